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
    InheritedListeners inherited,
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
            // Sockets a previous supervisor handed over (SIGUSR2) keep their queues; a socket systemd passed is one
            // socket every worker shares, whatever the strategy (ReusePort included).
            var layout = settings.Strategy;
            if (inherited.Take(ip.ToString()) is { } handedOver)
            {
                sockets = handedOver;
                layout = Adopt(ip, sockets, settings);
            }
            else
            {
                var activated = transportFactory.TakeActivated(ip, settings, _logger);
                sockets = activated ?? ListenSocketBinder.Bind(ip, settings.Strategy, count, settings.DeferAccept, transport);
                layout = activated is null ? settings.Strategy : AcceptStrategy.ThunderingHerd;
            }

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
            var handedOver = inherited.Take(unix.ToString());
            if (handedOver is { Length: not 1 })
            {
                Array.ForEach(handedOver, s => s.Dispose());
                throw new InvalidOperationException($"{unix}: the previous supervisor handed over {handedOver.Length} sockets for one Unix socket.");
            }

            var socket = handedOver is [var taken] ? taken : ListenSocketBinder.BindUnix(unix, socketOptions.Value);
            endpoint = new SupervisedEndpoint(
                unix.ToString(), [socket], AcceptStrategy.ThunderingHerd, settings.Acceptors, deferAccept: false, socketOptions.Value, _logger, acceptLock, handedOver is null ? null : unix.ToString());
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

    /// <summary>
    /// The layout handed-over sockets serve in: a <c>ReusePort</c> group stays one under <c>ReusePort</c> (its first
    /// sockets, as many slots as they fill) and serves a shared strategy through its first socket; a shared socket
    /// cannot become a group, since no <c>SO_REUSEPORT</c> socket can join it.
    /// </summary>
    private static AcceptStrategy Adopt(IPEndPoint ip, Socket[] sockets, AcceptStrategyOptions settings)
    {
        try
        {
            var flag = new byte[sizeof(int)];
            var group = sockets.Length > 1
                || (sockets[0].GetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_REUSEPORT, flag) == flag.Length && BitConverter.ToInt32(flag) != 0);
            if (settings.Strategy == AcceptStrategy.ReusePort && !group)
            {
                throw new InvalidOperationException(
                    $"{ip}: the previous supervisor's socket is one shared socket, which cannot become an SO_REUSEPORT group while it is open: changing Strategy to ReusePort needs a full restart.");
            }

            foreach (var socket in sockets)
            {
                ListenSocketBinder.Prepare(socket, settings.DeferAccept);
            }

            return settings.Strategy;
        }
        catch
        {
            Array.ForEach(sockets, s => s.Dispose());
            throw;
        }
    }

    private SupervisorListener Register(SupervisedEndpoint endpoint, int sockets)
    {
        supervisorSockets.Add(endpoint);
        AcceptStrategyLog.SupervisorBound(_logger, endpoint.BoundEndPoint, options.Value.Strategy, sockets, workerOptions.Value.Workers);
        return new SupervisorListener(endpoint, supervisorSockets);
    }
}
