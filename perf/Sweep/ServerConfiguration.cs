using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// One server of the sweep: Kestrel's default transport, or a strategy with its acceptors, workers and request budget
/// per worker (0 = unlimited; a budget recycles each worker after that many requests).
/// </summary>
internal sealed record ServerConfiguration(string? Strategy, int Acceptors, int Workers, int MaxRequests = 0)
{
    public static ServerConfiguration Baseline { get; } = new(null, 0, 0);

    public bool IsBaseline => Strategy is null;

    public string Label => IsBaseline
        ? "baseline"
        : string.Create(CultureInfo.InvariantCulture, $"{Strategy} A{Acceptors} W{Workers}{Budget}");

    /// <summary>The series a chart draws this point in (workers are the x axis).</summary>
    public string Series => IsBaseline ? "baseline" : string.Create(CultureInfo.InvariantCulture, $"{Strategy} A{Acceptors}{Budget}");

    /// <summary>The same server without a request budget: what a recycling point is compared against.</summary>
    public ServerConfiguration Unlimited => this with { MaxRequests = 0 };

    /// <summary>BenchmarkApp's command-line arguments for this configuration.</summary>
    public IReadOnlyList<string> Arguments => IsBaseline
        ? ["--Baseline=true"]
        :
        [
            $"--AcceptStrategy:Strategy={Strategy}",
            string.Create(CultureInfo.InvariantCulture, $"--AcceptStrategy:Acceptors={Acceptors}"),
            string.Create(CultureInfo.InvariantCulture, $"--WorkerProcesses:Workers={Workers}"),
            .. MaxRequests > 0 ? [string.Create(CultureInfo.InvariantCulture, $"--WorkerProcesses:MaxRequestsPerWorker={MaxRequests}")] : Array.Empty<string>(),
        ];

    /// <summary>Processes that serve requests (and so need warming): the workers, or the one process.</summary>
    public int ServingProcesses => Math.Max(1, Workers);

    private string Budget => MaxRequests > 0 ? string.Create(CultureInfo.InvariantCulture, $" R{MaxRequests}") : "";
}
