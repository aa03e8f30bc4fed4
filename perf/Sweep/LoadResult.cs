namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>What one ab or wrk run reported.</summary>
/// <param name="Completed">Requests answered (ab: complete requests; wrk: requests counted).</param>
/// <param name="Failed">Requests that failed: connect/read/write errors, timeouts, wrong length, non-2xx.</param>
/// <param name="FailureKinds">The failed requests by kind as the tool names them, e.g. "read 1 non-2xx 3"; empty when none failed.</param>
/// <param name="RequestsPerSecond">The tool's own throughput figure.</param>
/// <param name="P50Milliseconds">Median latency (ab reports whole milliseconds).</param>
/// <param name="P99Milliseconds">99th percentile latency.</param>
internal sealed record LoadResult(
    long Completed, long Failed, double RequestsPerSecond, double P50Milliseconds, double P99Milliseconds, string FailureKinds = "");
