using System.Globalization;
using System.Text;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>results.md: how it was run, on what, then one table per load mode.</summary>
internal static class MarkdownReport
{
    public static string Format(
        IReadOnlyList<PointSummary> points, SweepOptions options, string command, IReadOnlyList<(string Name, string Value)> machine,
        bool networkNamespace, IEnumerable<string> notes)
    {
        var md = new StringBuilder();
        md.Append("# Accept strategy sweep\n\n");
        md.Append(CultureInfo.InvariantCulture, $"Command: `{command}`\n\n");
        md.Append(CultureInfo.InvariantCulture, $"App: `{options.App ?? ServerProcess.BenchmarkAppPath}`{(options.App is null || options.App.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? " (JIT, run with dotnet)" : " (executable, e.g. Native AOT)")}\n\n");
        md.Append(CultureInfo.InvariantCulture,
            $"Each point: median of {options.Rounds} rounds (min–max beside it), every configuration running at once as its own server, " +
            $"warmed with {options.Warmup:N0} requests per serving process (spread over the load modes), then one unrecorded pass of every " +
            $"configuration and mode, then measured interleaved (order reversed every other pass). " +
            $"{options.Connections} concurrent connections; ab runs {options.AbRequests:N0} requests, wrk runs {options.WrkSeconds} s. " +
            $"Loopback only{(networkNamespace ? ", in a private network namespace" : "")}.\n\n");
        md.Append("\"vs baseline\" is the median of per-round ratios against Kestrel's default transport measured in the same round. ");
        md.Append("CPU is the server's (supervisor and workers, reaped workers included) per 1,000 requests. ");
        md.Append("Peak RSS is the whole server's, sampled every 100 ms during the runs. ");
        md.Append("Jain's fairness index (1 = even, 1/n = one took all) is over connections per worker and per acceptor, from the library's Meter.\n\n");

        md.Append("| Machine | |\n|---|---|\n");
        foreach (var (name, value) in machine)
        {
            md.Append(CultureInfo.InvariantCulture, $"| {name} | {value} |\n");
        }

        foreach (var mode in points.Select(p => p.Mode).Distinct())
        {
            md.Append(CultureInfo.InvariantCulture, $"\n## {mode.Name} ({mode.Description})\n\n");
            md.Append("| configuration | req/s | min–max | vs baseline | p50 ms | p99 ms | failed | CPU s / 1k req | peak RSS MiB | Jain workers | Jain acceptors |\n");
            md.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            foreach (var p in points.Where(p => p.Mode == mode))
            {
                md.Append(CultureInfo.InvariantCulture,
                    $"| {p.Configuration.Label} | {CsvReport.F(p.RequestsPerSecond, "0")} | {CsvReport.F(p.MinRequestsPerSecond, "0")}–{CsvReport.F(p.MaxRequestsPerSecond, "0")} " +
                    $"| {CsvReport.F(p.RatioToBaseline, "0.00")} | {CsvReport.F(p.P50Milliseconds, "0.##")} | {CsvReport.F(p.P99Milliseconds, "0.##")} " +
                    $"| {p.Failed} | {CsvReport.F(p.CpuSecondsPer1000, "0.000")} | {CsvReport.F(p.PeakRssKiB / 1024.0, "0")} " +
                    $"| {Dash(p.WorkerFairness)} | {Dash(p.AcceptorFairness)} |\n");
            }
        }

        RecyclingCost(md, points);

        var noteList = notes.ToList();
        if (noteList.Count > 0)
        {
            md.Append("\n## Notes\n\n");
            foreach (var note in noteList)
            {
                md.Append("- ").Append(note.ReplaceLineEndings(" ")).Append('\n');
            }
        }

        return md.ToString();
    }

    /// <summary>Each request budget against the same strategy's unlimited point, measured in the same rounds.</summary>
    private static void RecyclingCost(StringBuilder md, IReadOnlyList<PointSummary> points)
    {
        var recycling = points.Where(p => p.Configuration.MaxRequests > 0).ToList();
        if (recycling.Count == 0)
        {
            return;
        }

        md.Append("\n## Recycling cost\n\n");
        md.Append("Workers recycled after every N requests each, against the same server without a budget; \"vs unlimited\" is the median of per-round ratios.\n\n");
        md.Append("| mode | strategy | workers | budget | req/s | unlimited req/s | vs unlimited | failed |\n");
        md.Append("|---|---|---:|---:|---:|---:|---:|---:|\n");
        foreach (var p in recycling.OrderBy(p => p.Mode.Name, StringComparer.Ordinal).ThenBy(p => p.Configuration.Strategy, StringComparer.Ordinal).ThenBy(p => p.Configuration.MaxRequests))
        {
            var c = p.Configuration;
            var unlimited = points.FirstOrDefault(u => u.Mode == p.Mode && u.Configuration == c.Unlimited);
            md.Append(CultureInfo.InvariantCulture,
                $"| {p.Mode.Name} | {c.Strategy} A{c.Acceptors} | {c.Workers} | {c.MaxRequests:N0} | {CsvReport.F(p.RequestsPerSecond, "0")} " +
                $"| {CsvReport.F(unlimited?.RequestsPerSecond, "0")} | {CsvReport.F(p.RatioToUnlimited, "0.00")} | {p.Failed} |\n");
        }
    }

    private static string Dash(double? value) => value is null ? "–" : CsvReport.F(value, "0.000");
}
