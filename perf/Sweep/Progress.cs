using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>The one-line progress report on stderr (rewritten in place on a terminal, one line per step otherwise).</summary>
internal sealed class Progress(TextWriter writer, bool interactive)
{
    private int _lastLength;

    public void Phase(string what, int done, int total) => Write($"[{done + 1}/{total}] {what}");

    public void Measuring(ServerConfiguration configuration, LoadMode mode, int round, int rounds, int done, int total, TimeSpan? left) =>
        Write(string.Create(
            CultureInfo.InvariantCulture,
            $"[{done + 1}/{total}] {configuration.Label} · {mode} · {(round == 0 ? "settling pass (not recorded)" : $"round {round}/{rounds}")} · {(left is { } l ? $"about {Format(l)} left" : "estimating time left")}"));

    public void Done(TimeSpan elapsed)
    {
        Write($"measured in {Format(elapsed)}");
        if (interactive)
        {
            writer.WriteLine();
        }
    }

    public void Note(string message)
    {
        if (interactive && _lastLength > 0)
        {
            writer.WriteLine();
            _lastLength = 0;
        }

        writer.WriteLine(message);
    }

    private void Write(string line)
    {
        if (interactive)
        {
            writer.Write("\r" + line.PadRight(_lastLength));
            _lastLength = line.Length;
        }
        else
        {
            writer.WriteLine(line);
        }

        writer.Flush();
    }

    private static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture);
}
