using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Keys a user may write in the other product's section (the two shared one section before they were split), with
/// where each one is: an unknown key is then reported with its real place, not only as unknown.
/// </summary>
internal static class MovedKeys
{
    private static readonly string[] WorkerNames =
    [
        nameof(WorkerProcessOptions.Workers), nameof(WorkerProcessOptions.MaxWorkers), nameof(WorkerProcessOptions.MinSpareWorkers),
        nameof(WorkerProcessOptions.MaxSpareWorkers), nameof(WorkerProcessOptions.MaxRequestsPerWorker), nameof(WorkerProcessOptions.MinRequestsPerWorker),
        nameof(WorkerProcessOptions.MaxWorkerLifetime), nameof(WorkerProcessOptions.MaxWorkerMemoryMegabytes), nameof(WorkerProcessOptions.SpawnInterval),
        nameof(WorkerProcessOptions.RespawnBackoff), nameof(WorkerProcessOptions.MaxRespawnBackoff), nameof(WorkerProcessOptions.GracefulShutdownTimeout),
        nameof(WorkerProcessOptions.WorkerStartTimeout), nameof(WorkerProcessOptions.HangTimeout), nameof(WorkerProcessOptions.WarmupPath),
        nameof(WorkerProcessOptions.RuntimeProfile), nameof(WorkerProcessOptions.StatusEndpoint),
    ];

    /// <summary>Worker options written under <c>AcceptStrategy</c>.</summary>
    public static readonly IReadOnlyDictionary<string, string> ToWorkerProcesses = WorkerNames
        .Select(n => KeyValuePair.Create(n, n))
        .Append(KeyValuePair.Create("WorkerRuntimeProfile", nameof(WorkerProcessOptions.RuntimeProfile)))
        .ToDictionary(
            p => p.Key,
            p => $"{WorkerProcessOptions.SectionName}:{p.Value}, an option of the worker processes (which also need UseWorkerProcesses() in Program.cs)",
            StringComparer.OrdinalIgnoreCase);

    /// <summary>Transport options written under <c>WorkerProcesses</c>.</summary>
    public static readonly IReadOnlyDictionary<string, string> ToAcceptStrategy = new[]
        {
            nameof(AcceptStrategyOptions.Strategy), nameof(AcceptStrategyOptions.Acceptors), nameof(AcceptStrategyOptions.DeferAccept),
        }
        .ToDictionary(
            n => n,
            n => $"{AcceptStrategyOptions.SectionName}:{n}, an option of the transport that every worker accepts with",
            StringComparer.OrdinalIgnoreCase);
}
