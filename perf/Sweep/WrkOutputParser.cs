using System.Globalization;
using System.Text.RegularExpressions;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>Reads wrk's report (run with <c>--latency</c> for the percentiles).</summary>
internal static partial class WrkOutputParser
{
    public static LoadResult Parse(string output)
    {
        var completed = RequestsRegex().Match(output);
        var rps = RpsRegex().Match(output);
        if (!completed.Success)
        {
            throw AbOutputParser.Missing("requests in", output);
        }

        if (!rps.Success)
        {
            throw AbOutputParser.Missing("Requests/sec", output);
        }

        var kinds = new List<(string Kind, long Count)>();
        var errors = SocketErrorsRegex().Match(output);
        if (errors.Success)
        {
            string[] names = ["connect", "read", "write", "timeout"];
            for (var i = 1; i <= 4; i++)
            {
                kinds.Add((names[i - 1], long.Parse(errors.Groups[i].Value, CultureInfo.InvariantCulture)));
            }
        }

        var non2xx = Non2xxRegex().Match(output);
        if (non2xx.Success)
        {
            kinds.Add(("non-2xx", long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture)));
        }

        return new LoadResult(
            long.Parse(completed.Groups[1].Value, CultureInfo.InvariantCulture),
            kinds.Sum(k => k.Count),
            double.Parse(rps.Groups[1].Value, CultureInfo.InvariantCulture),
            Percentile(output, "50"),
            Percentile(output, "99"),
            AbOutputParser.Describe(kinds));
    }

    /// <summary>wrk prints durations as 812.00us, 1.23ms, 2.00s or 1.50m.</summary>
    internal static double ToMilliseconds(string value, string unit) =>
        double.Parse(value, CultureInfo.InvariantCulture) * unit switch
        {
            "us" => 0.001,
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => throw new FormatException($"Unknown wrk time unit '{unit}'."),
        };

    private static double Percentile(string output, string percent)
    {
        var distribution = output.IndexOf("Latency Distribution", StringComparison.Ordinal);
        if (distribution < 0)
        {
            throw AbOutputParser.Missing("Latency Distribution (run wrk with --latency)", output);
        }

        var match = Regex.Match(
            output[distribution..], $@"^\s*{percent}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\b", RegexOptions.Multiline, TimeSpan.FromSeconds(1));
        return match.Success
            ? ToMilliseconds(match.Groups[1].Value, match.Groups[2].Value)
            : throw AbOutputParser.Missing($"{percent}% latency", output);
    }

    [GeneratedRegex(@"^\s*(\d+) requests in ", RegexOptions.Multiline)]
    private static partial Regex RequestsRegex();

    [GeneratedRegex(@"^Requests/sec:\s+([\d.]+)", RegexOptions.Multiline)]
    private static partial Regex RpsRegex();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrorsRegex();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex Non2xxRegex();
}
