using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>Puts <see cref="WorkerRequestMiddleware"/> in front of the app's pipeline (registered in workers only).</summary>
internal sealed class WorkerStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<WorkerRequestMiddleware>();
        next(app);
    };
}
