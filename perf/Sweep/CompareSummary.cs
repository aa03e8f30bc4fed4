namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>One load run of one configuration in one round of <c>compare</c>.</summary>
/// <param name="Configuration">Index into the configurations; 0 is the reference.</param>
/// <param name="CpuSeconds">The server's utime + stime over the run (its processes, reaped workers included).</param>
/// <param name="ContextSwitches">Voluntary + involuntary switches of the server's threads over the run.</param>
/// <param name="Syscalls">System calls of the server's processes over the run; null when not counted.</param>
internal sealed record CompareRun(int Round, int Configuration, LoadResult Load, double CpuSeconds, long ContextSwitches, long? Syscalls)
{
    public double CpuMillisecondsPer1000 => Load.Completed == 0 ? double.NaN : CpuSeconds * 1_000_000 / Load.Completed;

    public double SwitchesPerRequest => Load.Completed == 0 ? double.NaN : ContextSwitches / (double)Load.Completed;

    public double? SyscallsPerRequest => Syscalls is { } calls && Load.Completed > 0 ? calls / (double)Load.Completed : null;
}

/// <summary>PSS of a server's processes in <see cref="ProcessTree.Members"/> order: the supervisor first, then its workers.</summary>
internal sealed record ServerMemory(IReadOnlyList<long> PssKiB)
{
    public int Processes => PssKiB.Count;

    public long TotalKiB => PssKiB.Sum();

    /// <summary>The median of the workers, or the one process when there are none.</summary>
    public double ServingKiB => PssKiB.Count switch
    {
        0 => double.NaN,
        1 => PssKiB[0],
        _ => PointSummary.Median(PssKiB.Skip(1).Select(k => (double)k)),
    };
}

/// <summary>One row of the report: a configuration over every measured round.</summary>
internal sealed record CompareRow(
    string Label,
    int Rounds,
    double RequestsPerSecond,
    double MinRequestsPerSecond,
    double MaxRequestsPerSecond,
    double RatioToFirst,
    long Failed,
    double CpuMillisecondsPer1000,
    double CpuRatioToFirst,
    double SwitchesPerRequest,
    double? SyscallsPerRequest,
    ServerMemory? Memory)
{
    /// <summary>
    /// Medians over the rounds, and ratios taken per round against the first configuration's run of the same round
    /// (then the median): the machine's drift between rounds, and other work on it, falls on both sides of each ratio.
    /// </summary>
    public static IReadOnlyList<CompareRow> Summarize(
        IReadOnlyList<string> labels, IReadOnlyList<CompareRun> runs, IReadOnlyList<ServerMemory>? memory = null)
    {
        var reference = runs.Where(r => r.Configuration == 0).ToDictionary(r => r.Round);
        return labels.Select((label, index) =>
        {
            var mine = runs.Where(r => r.Configuration == index).OrderBy(r => r.Round).ToList();
            var paired = mine.Where(r => reference.ContainsKey(r.Round)).Select(r => (Run: r, First: reference[r.Round])).ToList();
            var syscalls = mine.Where(r => r.SyscallsPerRequest is not null).Select(r => r.SyscallsPerRequest!.Value).ToList();
            return new CompareRow(
                label,
                mine.Count,
                PointSummary.Median(mine.Select(r => r.Load.RequestsPerSecond)),
                mine.Count == 0 ? double.NaN : mine.Min(r => r.Load.RequestsPerSecond),
                mine.Count == 0 ? double.NaN : mine.Max(r => r.Load.RequestsPerSecond),
                PointSummary.Median(paired.Where(p => p.First.Load.RequestsPerSecond > 0)
                    .Select(p => p.Run.Load.RequestsPerSecond / p.First.Load.RequestsPerSecond)),
                mine.Sum(r => r.Load.Failed),
                PointSummary.Median(mine.Select(r => r.CpuMillisecondsPer1000)),
                PointSummary.Median(paired.Where(p => p.First.CpuMillisecondsPer1000 > 0)
                    .Select(p => p.Run.CpuMillisecondsPer1000 / p.First.CpuMillisecondsPer1000)),
                PointSummary.Median(mine.Select(r => r.SwitchesPerRequest)),
                syscalls.Count == 0 ? null : PointSummary.Median(syscalls),
                memory?[index]);
        }).ToList();
    }
}
