using System.Globalization;
using System.Text;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>results.csv: one row per configuration and load mode, invariant culture, empty where not applicable.</summary>
internal static class CsvReport
{
    public const string Header =
        "mode,configuration,strategy,acceptors,workers,rounds,rps_median,rps_min,rps_max,ratio_to_baseline," +
        "p50_ms,p99_ms,failed,cpu_s_per_1k,peak_rss_mib,jain_workers,jain_acceptors,max_requests,ratio_to_unlimited,errors";

    public static string Format(IEnumerable<PointSummary> points)
    {
        var csv = new StringBuilder(Header).Append('\n');
        foreach (var p in points)
        {
            var c = p.Configuration;
            csv.AppendJoin(',',
            [
                p.Mode.Name,
                c.Label,
                c.Strategy ?? "baseline",
                c.IsBaseline ? "" : N(c.Acceptors),
                c.IsBaseline ? "" : N(c.Workers),
                N(p.Rounds),
                F(p.RequestsPerSecond, "0"),
                F(p.MinRequestsPerSecond, "0"),
                F(p.MaxRequestsPerSecond, "0"),
                F(p.RatioToBaseline, "0.000"),
                F(p.P50Milliseconds, "0.###"),
                F(p.P99Milliseconds, "0.###"),
                p.Failed.ToString(CultureInfo.InvariantCulture),
                F(p.CpuSecondsPer1000, "0.0000"),
                F(p.PeakRssKiB / 1024.0, "0.0"),
                F(p.WorkerFairness, "0.000"),
                F(p.AcceptorFairness, "0.000"),
                c.IsBaseline ? "" : N(c.MaxRequests),
                F(p.RatioToUnlimited, "0.000"),
                p.Errors.Count == 0 ? "" : "\"" + string.Join(" | ", p.Errors).Replace("\"", "\"\"", StringComparison.Ordinal).ReplaceLineEndings(" ") + "\"",
            ]).Append('\n');
        }

        return csv.ToString();
    }

    public const string RunsHeader = "mode,round,configuration,rps,completed,failed,p50_ms,p99_ms,cpu_s_per_1k,peak_rss_mib,jain_workers,jain_acceptors,error,failures";

    /// <summary>runs.csv: every load run in the order it ran, so drift and outliers can be seen, not only medians.</summary>
    public static string FormatRuns(IEnumerable<Measurement> runs)
    {
        var csv = new StringBuilder(RunsHeader).Append('\n');
        foreach (var r in runs)
        {
            csv.AppendJoin(',',
            [
                r.Mode.Name,
                N(r.Round),
                r.Configuration.Label,
                F(r.Load.RequestsPerSecond, "0"),
                r.Load.Completed.ToString(CultureInfo.InvariantCulture),
                r.Load.Failed.ToString(CultureInfo.InvariantCulture),
                F(r.Load.P50Milliseconds, "0.###"),
                F(r.Load.P99Milliseconds, "0.###"),
                F(r.CpuSecondsPer1000, "0.0000"),
                F(r.PeakRssKiB / 1024.0, "0.0"),
                F(r.WorkerFairness, "0.000"),
                F(r.AcceptorFairness, "0.000"),
                r.Error is null ? "" : "\"" + r.Error.Replace("\"", "\"\"", StringComparison.Ordinal).ReplaceLineEndings(" ") + "\"",
                r.Load.FailureKinds,
            ]).Append('\n');
        }

        return csv.ToString();
    }

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static string F(double? value, string format) =>
        value is { } v && !double.IsNaN(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "";
}
