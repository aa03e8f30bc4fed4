using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Worker;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>The one place this process's role is decided; <see cref="WorkerProcessInfo"/> carries the answer.</summary>
internal static class ProcessRoles
{
    /// <param name="model">Null when the app did not call <c>UseWorkerProcesses()</c>: then it is one process.</param>
    /// <param name="options">The worker options.</param>
    /// <param name="logger">For the one case that overrides the options.</param>
    public static (WorkerProcessRole Role, int Slot, int Generation) Resolve(WorkerProcessModel? model, WorkerProcessOptions options, ILogger logger)
    {
        if (model is null)
        {
            return (WorkerProcessRole.SingleProcess, -1, 0);
        }

        if (model.Worker is { } worker)
        {
            return (WorkerProcessRole.Worker, worker.Slot, worker.Generation);
        }

        if (options.Workers > 0 && UnderDotnetWatch)
        {
            // dotnet watch hot-reloads the process it started: a supervisor that serves nothing, while the workers
            // would keep the old code. One process gets every edit.
            AcceptStrategyLog.WatchRunsSingleProcess(logger, options.Workers);
            return (WorkerProcessRole.SingleProcess, -1, 0);
        }

        return (options.Workers > 0 ? WorkerProcessRole.Supervisor : WorkerProcessRole.SingleProcess, -1, 0);
    }

    /// <summary>
    /// Whether <see cref="Resolve"/> will make this process a supervisor or a worker, for what must be decided before
    /// any logger exists (the console's writers), so without its log line.
    /// </summary>
    public static bool InWorkerMode(WorkerIdentity? worker, WorkerProcessOptions options) =>
        worker is not null || (options.Workers > 0 && !UnderDotnetWatch);

    private static bool UnderDotnetWatch => Environment.GetEnvironmentVariable("DOTNET_WATCH") == "1";
}
