using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// First in a worker's pipeline: counts every request against the worker's budget and, while the worker drains,
/// answers HTTP/1.x requests with <c>Connection: close</c> so clients move to another worker without a failed request.
/// </summary>
internal sealed class WorkerRequestMiddleware(RequestDelegate next, WorkerAgent agent)
{
    public Task InvokeAsync(HttpContext context)
    {
        agent.RequestStarted();
        if (agent.IsDraining && !HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
        {
            context.Response.Headers.Connection = "close";
        }

        return next(context);
    }
}
