using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Supervisor.Endpoints;

/// <summary>
/// Binds Kestrel's endpoints in the supervisor and registers the sockets for the workers; it never accepts on them.
/// </summary>
internal sealed class SupervisorBinder(
    IOptions<AcceptStrategyOptions> options,
    IOptions<WorkerProcessOptions> workerOptions,
    IOptions<SocketTransportOptions> socketOptions,
    SupervisorSockets supervisorSockets,
    AcceptStrategyListenerFactory transportFactory,
    ILoggerFactory loggerFactory)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.SupervisorCategory);

    /// <summary>An IP endpoint or a Unix socket; Kestrel refuses anything else before this (RoleListenerFactory).</summary>
    public IConnectionListener Bind(EndPoint endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint unix => BindUnix(unix),
        IPEndPoint ip => BindIp(ip),
        _ => throw new NotSupportedException($"Worker processes are handed IP endpoints and Unix sockets, not {endpoint.GetType().Name} '{endpoint}'."),
    };

    private SupervisorListener BindIp(IPEndPoint ip)
    {
        var settings = options.Value;
        var transport = socketOptions.Value;

        // ReusePort: one group of Acceptors sockets per worker slot; otherwise one socket every worker shares.
        var count = settings.Strategy == AcceptStrategy.ReusePort ? settings.Acceptors * workerOptions.Value.Workers : 1;
        // Serialized: each endpoint has a lock of its own, so an acceptor waiting on a quiet endpoint with its lock held
        // keeps no other endpoint's acceptors waiting (one process gives each listener a mutex of its own likewise).
        var acceptLock = settings.Strategy == AcceptStrategy.Serialized ? AcceptLockFile.Create() : null;
        SupervisedEndpoint endpoint;
        Socket[] sockets;
        try
        {
            // A socket systemd passed is one socket every worker shares, whatever the strategy (ReusePort included).
            var activated = transportFactory.TakeActivated(ip, settings, _logger);
            sockets = activated ?? ListenSocketBinder.Bind(ip, settings.Strategy, count, settings.DeferAccept, transport);
            var layout = activated is null ? settings.Strategy : AcceptStrategy.ThunderingHerd;
            endpoint = new SupervisedEndpoint(ip.ToString(), sockets, layout, settings.Acceptors, settings.DeferAccept, transport, _logger, acceptLock);
        }
        catch
        {
            acceptLock?.Dispose();
            throw;
        }

        return Register(endpoint, sockets.Length);
    }

    /// <summary>One socket every worker shares, whatever the strategy: the accept lock (Serialized) or the herd applies.</summary>
    private SupervisorListener BindUnix(UnixDomainSocketEndPoint unix)
    {
        var settings = options.Value;
        var acceptLock = settings.Strategy == AcceptStrategy.Serialized ? AcceptLockFile.Create() : null;
        SupervisedEndpoint endpoint;
        try
        {
            var socket = ListenSocketBinder.BindUnix(unix, socketOptions.Value);
            endpoint = new SupervisedEndpoint(unix.ToString(), [socket], AcceptStrategy.ThunderingHerd, settings.Acceptors, deferAccept: false, socketOptions.Value, _logger, acceptLock);
        }
        catch
        {
            acceptLock?.Dispose();
            throw;
        }

        if (settings.Strategy == AcceptStrategy.ReusePort)
        {
            AcceptStrategyLog.UnixEndpointShared(_logger, unix.ToString());
        }

        return Register(endpoint, 1);
    }

    private SupervisorListener Register(SupervisedEndpoint endpoint, int sockets)
    {
        supervisorSockets.Add(endpoint);
        AcceptStrategyLog.SupervisorBound(_logger, endpoint.BoundEndPoint, options.Value.Strategy, sockets, workerOptions.Value.Workers);
        return new SupervisorListener(endpoint, supervisorSockets);
    }
}
