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
        var kinds = new List<(string Kind, long Count)>();
        var breakdown = FailureBreakdownRegex().Match(output);
        if (breakdown.Success)
        {
            string[] names = ["connect", "receive", "length", "exceptions"];
            for (var i = 1; i <= 4; i++)
            {
                kinds.Add((names[i - 1], long.Parse(breakdown.Groups[i].Value, CultureInfo.InvariantCulture)));
            }
        }
        else if (failed > 0)
        {
            kinds.Add(("failed", failed));
        }

        var non2xx = Non2xxRegex().Match(output);
        if (non2xx.Success)
        {
            var count = long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture);
            failed += count;
            kinds.Add(("non-2xx", count));
        }

        return new LoadResult(
            completed,
            failed,
            Double(RpsRegex(), output, "Requests per second"),
            Percentile(output, "50"),
            Percentile(output, "99"),
            Describe(kinds));
    }

    /// <summary>"read 1 non-2xx 3": the kinds that happened, in the tool's order.</summary>
    internal static string Describe(IEnumerable<(string Kind, long Count)> kinds) =>
        string.Join(' ', kinds.Where(k => k.Count > 0).Select(k => string.Create(CultureInfo.InvariantCulture, $"{k.Kind} {k.Count}")));

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

    [GeneratedRegex(@"Failed requests:\s+\d+\s*\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)")]
    private static partial Regex FailureBreakdownRegex();
}
