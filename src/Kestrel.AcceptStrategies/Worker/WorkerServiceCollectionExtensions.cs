using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>The worker's parts, registered only in a process a supervisor started, with its identity.</summary>
internal static class WorkerServiceCollectionExtensions
{
    public static IServiceCollection AddAcceptStrategyWorker(this IServiceCollection services, WorkerIdentity worker)
    {
        services.AddSingleton(worker);

        // Every line a worker logs names it (it shares the supervisor's output): a scope the logger factory adds.
        services.AddSingleton<IExternalScopeProvider>(new WorkerLogScopeProvider(new WorkerLogScope(Environment.ProcessId, worker.Slot, worker.Generation)));
        services.AddSingleton<IPostConfigureOptions<SimpleConsoleFormatterOptions>, WorkerConsoleScopes>();
        services.AddSingleton<IPostConfigureOptions<JsonConsoleFormatterOptions>, WorkerConsoleScopes>();
        services.AddSingleton<IPostConfigureOptions<ConsoleFormatterOptions>, WorkerConsoleScopes>();
        services.AddSingleton<IPostConfigureOptions<ConsoleLoggerOptions>, WorkerConsoleScopes>();

        // One start-up line per worker (the supervisor's "ready"), not the host's four.
        services.AddSingleton<IConfigureOptions<LoggerFilterOptions>, WorkerStartupLines>();
        services.AddSingleton<WorkerBinder>();
        services.AddSingleton<WorkerListeners>();
        services.AddSingleton<WorkerControlClient>();
        services.AddSingleton<WorkerRequests>();
        services.AddSingleton<WorkerHeartbeat>();
        services.AddSingleton<WorkerWarmup>();
        services.AddSingleton<WorkerDrain>();
        services.AddHostedService<WorkerAgent>();
        services.AddTransient<IStartupFilter, WorkerStartupFilter>();
        return services;
    }
}
