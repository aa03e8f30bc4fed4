using System.Globalization;
using System.Text.RegularExpressions;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>Reads ApacheBench's report.</summary>
internal static partial class AbOutputParser
{
    public static LoadResult Parse(string output)
    {
        var completed = Long(CompleteRegex(), output, "Complete requests");
        // "Failed requests" counts connect, receive, length and exception failures; non-2xx answers are a separate line.
        var failed = Long(FailedRegex(), output, "Failed requests");
        var non2xx = Non2xxRegex().Match(output);
        if (non2xx.Success)
        {
            failed += long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        return new LoadResult(
            completed,
            failed,
            Double(RpsRegex(), output, "Requests per second"),
            Percentile(output, "50"),
            Percentile(output, "99"));
    }

    private static double Percentile(string output, string percent)
    {
        var match = Regex.Match(output, $@"^\s*{percent}%\s+(\d+)", RegexOptions.Multiline, TimeSpan.FromSeconds(1));
        if (!match.Success)
        {
            throw Missing($"{percent}% latency", output);
        }

        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static long Long(Regex regex, string output, string what)
    {
        var match = regex.Match(output);
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : throw Missing(what, output);
    }

    private static double Double(Regex regex, string output, string what)
    {
        var match = regex.Match(output);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : throw Missing(what, output);
    }

    internal static FormatException Missing(string what, string output) =>
        new($"No \"{what}\" in the load generator's output:\n{(output.Length > 2000 ? output[..2000] + "…" : output)}");

    [GeneratedRegex(@"^Complete requests:\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex CompleteRegex();

    [GeneratedRegex(@"^Failed requests:\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex FailedRegex();

    [GeneratedRegex(@"^Non-2xx responses:\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex Non2xxRegex();

    [GeneratedRegex(@"^Requests per second:\s+([\d.]+)", RegexOptions.Multiline)]
    private static partial Regex RpsRegex();
}
