using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// The transport for IP endpoints, a sibling of Kestrel's Transport.Sockets: binds an endpoint and accepts on it with
/// the configured strategy. Other endpoints (Unix sockets, named pipes, file handles) are declined through
/// <see cref="IConnectionListenerFactorySelector"/> and fall through to Kestrel's own transport.
/// </summary>
/// <remarks>
/// It knows nothing of processes: whoever made the sockets elsewhere (a worker, from inherited descriptors) builds a
/// listener on them through <see cref="Create"/> and starts it when it likes.
/// </remarks>
internal sealed class AcceptStrategyListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly IOptions<AcceptStrategyOptions> _options;
    private readonly IOptions<SocketTransportOptions> _socketOptions;
    private readonly AcceptStrategyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly SocketActivation? _activation;
    private readonly IMemoryPoolFactory<byte>? _memoryPoolFactory;

    public AcceptStrategyListenerFactory(
        IOptions<AcceptStrategyOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        AcceptStrategyMetrics metrics,
        ILoggerFactory loggerFactory,
        SocketActivation? activation = null,
        IMemoryPoolFactory<byte>? memoryPoolFactory = null)
    {
        _activation = activation;
        _memoryPoolFactory = memoryPoolFactory;
        _options = options;
        _socketOptions = socketOptions;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger(AcceptStrategyLog.ListenersCategory);
        _loggerFactory = loggerFactory;
    }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    /// <summary>Binds <paramref name="endpoint"/> and starts accepting at once.</summary>
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip)
        {
            throw new NotSupportedException(
                $"Kestrel.AcceptStrategies binds IP endpoints only; {endpoint.GetType().Name} '{endpoint}' belongs to Kestrel's own transport.");
        }

        var options = _options.Value;
        var sockets = TakeActivated(ip, options, _logger)
            ?? ListenSocketBinder.Bind(ip, options.Strategy, options.Acceptors, options.DeferAccept, _socketOptions.Value);
        var mutexFactory = options.Strategy == AcceptStrategy.Serialized ? new InProcessAcceptMutexFactory() : null;
        var listener = Create(sockets, options.Strategy, options.Acceptors, mutexFactory, observer: null);
        listener.Start();
        return new ValueTask<IConnectionListener>(listener);
    }

    /// <summary>
    /// The socket systemd passed for <paramref name="ip"/>, prepared like a bound shared one (whatever the strategy); null when
    /// there is none.
    /// </summary>
    public Socket[]? TakeActivated(IPEndPoint ip, AcceptStrategyOptions options, ILogger logger)
    {
        if (_activation is null || !_activation.TryTake(ip, out var socket, out var fd, out var name))
        {
            return null;
        }

        try
        {
            ListenSocketBinder.Prepare(socket, options.DeferAccept);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        AcceptStrategyLog.ActivatedSocketUsed(logger, ip, fd, name, options.Strategy);
        if (options.Strategy == AcceptStrategy.ReusePort)
        {
            // One socket cannot be split into an SO_REUSEPORT group: every acceptor (of every worker) shares it.
            AcceptStrategyLog.ActivatedSocketShared(logger, ip, fd);
        }

        return [socket];
    }

    /// <summary>
    /// A listener, not started, on sockets made elsewhere. It owns them and <paramref name="mutexFactory"/> from
    /// here on: if it cannot be made, they are disposed.
    /// </summary>
    public AcceptStrategyConnectionListener Create(
        Socket[] sockets, AcceptStrategy strategy, int acceptors, IAcceptMutexFactory? mutexFactory, IAcceptedConnectionObserver? observer,
        LogLevel boundLevel = LogLevel.Information)
    {
        AcceptStrategyConnectionListener listener;
        try
        {
            listener = new AcceptStrategyConnectionListener(
                sockets, strategy, acceptors, mutexFactory, _socketOptions.Value, _metrics, _logger, _loggerFactory, observer, _memoryPoolFactory);
        }
        catch
        {
            Array.ForEach(sockets, s => s.Dispose());
            mutexFactory?.Dispose();
            throw;
        }

        AcceptStrategyLog.ListenerBound(
            _logger, boundLevel, listener.EndPoint, strategy, acceptors, sockets.Length, mutexFactory?.Kind ?? "none", _options.Value.DeferAccept);
        return listener;
    }
}
