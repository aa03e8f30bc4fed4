namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>One configuration under one load mode, over every round: medians, range, sums and peaks.</summary>
internal sealed record PointSummary(
    ServerConfiguration Configuration,
    LoadMode Mode,
    int Rounds,
    double RequestsPerSecond,
    double MinRequestsPerSecond,
    double MaxRequestsPerSecond,
    double? RatioToBaseline,
    double P50Milliseconds,
    double P99Milliseconds,
    long Failed,
    double CpuSecondsPer1000,
    long PeakRssKiB,
    double? WorkerFairness,
    double? AcceptorFairness,
    IReadOnlyList<string> Errors,
    double? RatioToUnlimited = null)
{
    /// <param name="unlimitedRuns">For a point with a request budget, the same server's runs without one.</param>
    public static PointSummary From(
        IReadOnlyList<Measurement> runs, IReadOnlyList<Measurement> baselineRuns, IReadOnlyList<Measurement>? unlimitedRuns = null)
    {
        var first = runs[0];
        var ok = runs.Where(r => r.Error is null).ToList();
        var ratios = RoundRatios(ok, baselineRuns);
        var unlimited = unlimitedRuns is null ? [] : RoundRatios(ok, unlimitedRuns);
        return new PointSummary(
            first.Configuration,
            first.Mode,
            ok.Count,
            Median(ok.Select(r => r.Load.RequestsPerSecond)),
            ok.Count == 0 ? double.NaN : ok.Min(r => r.Load.RequestsPerSecond),
            ok.Count == 0 ? double.NaN : ok.Max(r => r.Load.RequestsPerSecond),
            ratios.Count == 0 ? null : Median(ratios),
            Median(ok.Select(r => r.Load.P50Milliseconds)),
            Median(ok.Select(r => r.Load.P99Milliseconds)),
            runs.Sum(r => r.Load.Failed),
            Median(ok.Select(r => r.CpuSecondsPer1000)),
            runs.Count == 0 ? 0 : runs.Max(r => r.PeakRssKiB),
            NullableMedian(ok.Select(r => r.WorkerFairness)),
            NullableMedian(ok.Select(r => r.AcceptorFairness)),
            runs.Where(r => r.Error is not null).Select(r => r.Error!).ToList(),
            unlimited.Count == 0 ? null : Median(unlimited));
    }

    /// <summary>
    /// Ratio per round against the reference measured in the same round (then the median is taken): the machine's
    /// drift between rounds cancels out.
    /// </summary>
    private static List<double> RoundRatios(List<Measurement> ok, IReadOnlyList<Measurement> referenceRuns) => ok
        .Select(r => (r, b: referenceRuns.FirstOrDefault(b => b.Round == r.Round && b.Error is null)))
        .Where(p => p.b is not null && p.b.Load.RequestsPerSecond > 0)
        .Select(p => p.r.Load.RequestsPerSecond / p.b!.Load.RequestsPerSecond)
        .ToList();

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static double? NullableMedian(IEnumerable<double?> values)
    {
        var present = values.Where(v => v.HasValue).Select(v => v!.Value).ToList();
        return present.Count == 0 ? null : Median(present);
    }
}
