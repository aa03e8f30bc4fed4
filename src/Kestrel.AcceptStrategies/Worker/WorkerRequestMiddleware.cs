using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// First in a worker's pipeline: counts every request against the worker's budget, marks its connection as having a
/// request in the app (so a drain does not cut it) and, while the worker drains, answers HTTP/1.x requests with
/// <c>Connection: close</c> so clients move to another worker without a failed request.
/// </summary>
internal sealed class WorkerRequestMiddleware(RequestDelegate next, WorkerRequests requests, WorkerDrain drain, WorkerListeners listeners)
{
    public async Task InvokeAsync(HttpContext context)
    {
        requests.Started();
        var protocol = context.Request.Protocol;
        var multiplexed = HttpProtocol.IsHttp2(protocol) || HttpProtocol.IsHttp3(protocol);
        var connection = listeners.Connections.Find(context.Connection.Id);
        connection?.RequestStarted(multiplexed);
        if (drain.IsDraining)
        {
            if (multiplexed)
            {
                // GOAWAY while this stream runs: Kestrel then announces the close first and closes after the stream,
                // so a request the client sends meanwhile is refused (and retried), never lost.
                connection?.RequestClose();
            }
            else
            {
                context.Response.Headers.Connection = "close";
            }
        }

        // Ended once the response is complete, not when the app returns: Kestrel still writes the headers of a
        // body-less response and the buffered tail after that, and a drain must not cut a response being sent.
        // OnCompleted runs for aborted requests too, so in-flight counts come back to zero.
        context.Response.OnCompleted(static state =>
        {
            var (requests, connection) = ((WorkerRequests, TrackedConnection?))state;
            connection?.RequestEnded();
            requests.Ended();
            return Task.CompletedTask;
        }, (requests, connection));

        await next(context).ConfigureAwait(false);
    }
}
