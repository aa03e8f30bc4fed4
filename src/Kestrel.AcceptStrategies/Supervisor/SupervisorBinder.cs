using System.Net;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// Binds Kestrel's endpoints in the supervisor and registers the sockets for the workers; it never accepts on them.
/// </summary>
internal sealed class SupervisorBinder(
    IOptions<AcceptStrategyOptions> options,
    IOptions<SocketTransportOptions> socketOptions,
    SupervisorSockets supervisorSockets,
    AcceptStrategyListenerFactory transportFactory,
    ILoggerFactory loggerFactory)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.SupervisorCategory);

    public IConnectionListener Bind(IPEndPoint ip)
    {
        var settings = options.Value;
        var transport = socketOptions.Value;

        // ReusePort: one group of Acceptors sockets per worker slot; otherwise one socket every worker shares.
        var count = settings.Strategy == AcceptStrategy.ReusePort ? settings.Acceptors * settings.Workers : 1;
        // A socket systemd passed is one socket every worker shares, whatever the strategy (ReusePort included).
        var activated = transportFactory.TakeActivated(ip, settings, _logger);
        var sockets = activated ?? ListenSocketBinder.Bind(ip, settings.Strategy, count, settings.DeferAccept, transport);
        var layout = activated is null ? settings.Strategy : AcceptStrategy.ThunderingHerd;
        var endpoint = new SupervisedEndpoint(ip.ToString(), sockets, layout, settings.Acceptors, settings.DeferAccept, transport);
        supervisorSockets.Add(endpoint);
        AcceptStrategyLog.SupervisorBound(_logger, endpoint.BoundEndPoint, settings.Strategy, sockets.Length, settings.Workers);
        return new SupervisorListener(endpoint, supervisorSockets);
    }
}
