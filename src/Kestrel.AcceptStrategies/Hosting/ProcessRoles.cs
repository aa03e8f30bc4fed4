using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Worker;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>The one place this process's role is decided; <see cref="AcceptStrategyProcess"/> carries the answer.</summary>
internal static class ProcessRoles
{
    public static (AcceptStrategyRole Role, int Slot, int Generation) Resolve(WorkerIdentity? worker, AcceptStrategyOptions options, ILogger logger)
    {
        if (worker is not null)
        {
            return (AcceptStrategyRole.Worker, worker.Slot, worker.Generation);
        }

        if (options.Workers > 0 && Environment.GetEnvironmentVariable("DOTNET_WATCH") == "1")
        {
            // dotnet watch hot-reloads the process it started: a supervisor that serves nothing, while the workers
            // would keep the old code. One process gets every edit.
            AcceptStrategyLog.WatchRunsSingleProcess(logger, options.Workers);
            return (AcceptStrategyRole.SingleProcess, -1, 0);
        }

        return (options.Workers > 0 ? AcceptStrategyRole.Supervisor : AcceptStrategyRole.SingleProcess, -1, 0);
    }
}
