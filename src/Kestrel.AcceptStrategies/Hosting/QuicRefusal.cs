using System.Net;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Kestrel's HTTP/3 (QUIC) transport in worker mode: a UDP socket cannot be handed over like the TCP ones, so the
/// supervisor would serve HTTP/3 itself while every worker failed to bind the port. Registered in worker mode only,
/// last, so Kestrel asks it first: start-up fails naming the endpoint instead.
/// </summary>
internal sealed class QuicRefusal(IOptions<WorkerProcessOptions> options, ILoggerFactory loggerFactory)
    : IMultiplexedConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => true;

    public ValueTask<IMultiplexedConnectionListener> BindAsync(EndPoint endpoint, IFeatureCollection? features = null, CancellationToken cancellationToken = default)
    {
        var workers = options.Value.Workers;
        var described = $"HTTP/3 (QUIC) on {endpoint}";
        AcceptStrategyLog.EndpointRefused(loggerFactory.CreateLogger(AcceptStrategyLog.HostingCategory), described, workers);
        throw new NotSupportedException(
            $"Refusing to bind {described}: with WorkerProcesses:Workers = {workers} only TCP endpoints are handed to worker processes. Remove Http3 from the endpoint's Protocols, or set Workers to 0.");
    }
}
