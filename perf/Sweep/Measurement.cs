namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>One load run against one server: what the tool saw and what the server spent.</summary>
internal sealed record Measurement(
    ServerConfiguration Configuration,
    LoadMode Mode,
    int Round,
    LoadResult Load,
    double CpuSecondsPer1000,
    long PeakRssKiB,
    double? WorkerFairness,
    double? AcceptorFairness,
    string? Error);
