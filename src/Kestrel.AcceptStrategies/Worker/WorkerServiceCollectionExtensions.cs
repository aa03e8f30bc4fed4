using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>The worker's parts, registered only in a process a supervisor started, with its identity.</summary>
internal static class WorkerServiceCollectionExtensions
{
    public static IServiceCollection AddAcceptStrategyWorker(this IServiceCollection services, WorkerIdentity worker)
    {
        services.AddSingleton(worker);
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
