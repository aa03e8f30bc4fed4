using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>Puts <see cref="WorkerRequestMiddleware"/> in front of the app's pipeline, in workers only.</summary>
internal sealed class WorkerStartupFilter(AcceptStrategyProcess process) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) =>
        process.Role != AcceptStrategyRole.Worker
            ? next
            : app =>
            {
                app.UseMiddleware<WorkerRequestMiddleware>();
                next(app);
            };
}
