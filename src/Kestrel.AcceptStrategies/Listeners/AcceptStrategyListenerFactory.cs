using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Supervisor;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Kestrel's transport for IP endpoints. In one process other endpoints (Unix sockets, named pipes, file handles) are
/// declined through <see cref="IConnectionListenerFactorySelector"/> and fall through to Kestrel's own transport; in
/// worker mode they are refused, since only IP endpoints are handed to workers.
/// </summary>
/// <remarks>
/// In one process it binds and accepts. In a supervisor it binds and registers the sockets for the workers, and
/// never accepts. In a worker it accepts on the descriptors the supervisor passed for the same endpoint.
/// </remarks>
internal sealed class AcceptStrategyListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly IOptions<AcceptStrategyOptions> _options;
    private readonly IOptions<SocketTransportOptions> _socketOptions;
    private readonly AcceptStrategyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ILogger _transportLogger;
    private readonly AcceptStrategyProcess _process;
    private readonly SupervisorSockets _supervisorSockets;
    private readonly WorkerListeners _workerListeners;

    public AcceptStrategyListenerFactory(
        IOptions<AcceptStrategyOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        AcceptStrategyMetrics metrics,
        ILoggerFactory loggerFactory,
        AcceptStrategyProcess process,
        SupervisorSockets supervisorSockets,
        WorkerListeners workerListeners)
    {
        _process = process;
        _supervisorSockets = supervisorSockets;
        _workerListeners = workerListeners;
        _options = options;
        _socketOptions = socketOptions;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger(AcceptStrategyLog.CategoryName);
        _transportLogger = loggerFactory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets");
    }

    /// <summary>
    /// In one process, IP endpoints only. In worker mode every endpoint, so that one this transport cannot hand to
    /// workers is refused here instead of being served by the supervisor's Kestrel (while every worker, binding it
    /// again, dies on "address already in use").
    /// </summary>
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint || _process.Role != AcceptStrategyRole.SingleProcess;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip)
        {
            if (_process.Role == AcceptStrategyRole.SingleProcess)
            {
                throw new NotSupportedException(
                    $"Kestrel.AcceptStrategies binds IP endpoints only; {endpoint.GetType().Name} '{endpoint}' belongs to Kestrel's own transport.");
            }

            var workers = _options.Value.Workers;
            AcceptStrategyLog.EndpointRefused(_logger, Describe(endpoint), workers);
            throw new NotSupportedException(
                $"AcceptStrategy:Workers = {workers}, but {Describe(endpoint)} is not an IP endpoint: only IP endpoints are handed to worker processes. Listen on an IP endpoint instead (behind nginx: proxy_pass http://127.0.0.1:PORT), or set Workers = 0 to serve it in one process.");
        }

        var options = _options.Value;
        var socketOptions = _socketOptions.Value;
        return new ValueTask<IConnectionListener>(_process.Role switch
        {
            AcceptStrategyRole.Supervisor => BindSupervisor(ip, options, socketOptions),
            AcceptStrategyRole.Worker => BindWorker(ip, options, socketOptions, WorkerEnvironment.Current!),
            _ => BindSingleProcess(ip, options, socketOptions),
        });
    }

    private AcceptStrategyConnectionListener BindSingleProcess(IPEndPoint ip, AcceptStrategyOptions options, SocketTransportOptions socketOptions)
    {
        var sockets = ListenSocketBinder.Bind(ip, options.Strategy, options.Acceptors, options.DeferAccept, socketOptions);
        var mutexFactory = options.Strategy == AcceptStrategy.Serialized ? new InProcessAcceptMutexFactory() : null;
        var listener = CreateListener(sockets, options.Strategy, options.Acceptors, mutexFactory, socketOptions, connections: null);
        AcceptStrategyLog.ListenerBound(
            _logger, listener.EndPoint, options.Strategy, options.Acceptors, sockets.Length, mutexFactory?.Kind ?? "none", options.DeferAccept);
        listener.Start();
        return listener;
    }

    private SupervisorListener BindSupervisor(IPEndPoint ip, AcceptStrategyOptions options, SocketTransportOptions socketOptions)
    {
        // ReusePort: one group of Acceptors sockets per worker slot; otherwise one socket every worker shares.
        var count = options.Strategy == AcceptStrategy.ReusePort ? options.Acceptors * options.Workers : 1;
        var sockets = ListenSocketBinder.Bind(ip, options.Strategy, count, options.DeferAccept, socketOptions);
        var endpoint = new SupervisedEndpoint(ip.ToString(), sockets, options.Strategy, options.Acceptors, options.DeferAccept, socketOptions);
        _supervisorSockets.Add(endpoint);
        AcceptStrategyLog.SupervisorBound(_logger, endpoint.BoundEndPoint, options.Strategy, sockets.Length, options.Workers);
        return new SupervisorListener(endpoint, _supervisorSockets);
    }

    private AcceptStrategyConnectionListener BindWorker(IPEndPoint ip, AcceptStrategyOptions options, SocketTransportOptions socketOptions, WorkerEnvironment worker)
    {
        var fds = worker.TakeListenFds(ip.ToString()) ?? throw new InvalidOperationException(
            $"This worker was asked to bind {ip}, but its supervisor passed sockets only for {string.Join(", ", worker.Endpoints)}. Workers serve the endpoints the supervisor bound at start-up; restart the supervisor to change them.");

        // The supervisor's strategy made the sockets; a reloaded configuration cannot change it.
        var strategy = worker.Strategy;
        var mutexFactory = strategy == AcceptStrategy.Serialized
            ? FlockAcceptMutexFactory.ForInheritedFd(worker.LockFd ?? throw new InvalidOperationException("The supervisor passed no accept lock file for the Serialized strategy."))
            : null;
        var sockets = Adopt(fds);
        var acceptors = strategy == AcceptStrategy.ReusePort ? sockets.Length : options.Acceptors;
        var listener = CreateListener(sockets, strategy, acceptors, mutexFactory, socketOptions, _workerListeners.Connections);
        AcceptStrategyLog.ListenerBound(_logger, listener.EndPoint, strategy, acceptors, sockets.Length, mutexFactory?.Kind ?? "none", options.DeferAccept);

        // Started by the worker agent once the supervisor tells it to accept.
        _workerListeners.Add(listener);
        return listener;
    }

    private static string Describe(EndPoint endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint unix => $"the Unix socket 'http://unix:{unix}'",
        FileHandleEndPoint handle => $"the file handle {handle.FileHandle}",
        _ => $"the {endpoint.GetType().Name} '{endpoint}'",
    };

    /// <summary>Wraps inherited descriptors; if one cannot be, every one of them is closed, not leaked.</summary>
    private static Socket[] Adopt(int[] fds)
    {
        var sockets = new List<Socket>(fds.Length);
        try
        {
            foreach (var fd in fds)
            {
                sockets.Add(new Socket(new SafeSocketHandle(fd, ownsHandle: true)));
            }

            return [.. sockets];
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            foreach (var fd in fds.Skip(sockets.Count))
            {
                _ = Libc.Close(fd);
            }

            throw;
        }
    }

    private AcceptStrategyConnectionListener CreateListener(
        Socket[] sockets, AcceptStrategy strategy, int acceptors, IAcceptMutexFactory? mutexFactory, SocketTransportOptions socketOptions, ConnectionCounter? connections)
    {
        try
        {
            return new AcceptStrategyConnectionListener(
                sockets, strategy, acceptors, mutexFactory, socketOptions, _metrics, _logger, _transportLogger, connections);
        }
        catch
        {
            Array.ForEach(sockets, s => s.Dispose());
            mutexFactory?.Dispose();
            throw;
        }
    }
}
