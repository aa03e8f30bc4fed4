using System.Net;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Kestrel's transport for IP endpoints. Other endpoints (Unix sockets, named pipes, file handles) are declined
/// through <see cref="IConnectionListenerFactorySelector"/> and fall through to Kestrel's own transport.
/// </summary>
internal sealed class AcceptStrategyListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly IOptions<AcceptStrategyOptions> _options;
    private readonly IOptions<SocketTransportOptions> _socketOptions;
    private readonly AcceptStrategyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ILogger _transportLogger;

    public AcceptStrategyListenerFactory(
        IOptions<AcceptStrategyOptions> options,
        IOptions<SocketTransportOptions> socketOptions,
        AcceptStrategyMetrics metrics,
        ILoggerFactory loggerFactory)
    {
        _options = options;
        _socketOptions = socketOptions;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger(AcceptStrategyLog.CategoryName);
        _transportLogger = loggerFactory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets");
    }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip)
        {
            throw new NotSupportedException(
                $"Kestrel.AcceptStrategies binds IP endpoints only; {endpoint.GetType().Name} '{endpoint}' belongs to Kestrel's own transport.");
        }

        var options = _options.Value;
        var socketOptions = _socketOptions.Value;
        var sockets = ListenSocketBinder.Bind(ip, options.Strategy, options.Acceptors, options.DeferAccept, socketOptions);
        var mutexFactory = options.Strategy == AcceptStrategy.Serialized ? new InProcessAcceptMutexFactory() : null;

        AcceptStrategyConnectionListener listener;
        try
        {
            listener = new AcceptStrategyConnectionListener(
                sockets, options.Strategy, options.Acceptors, mutexFactory, socketOptions, _metrics, _logger, _transportLogger);
        }
        catch
        {
            Array.ForEach(sockets, s => s.Dispose());
            mutexFactory?.Dispose();
            throw;
        }

        AcceptStrategyLog.ListenerBound(
            _logger, listener.EndPoint, options.Strategy, options.Acceptors, sockets.Length, mutexFactory?.Kind ?? "none", options.DeferAccept);
        return new ValueTask<IConnectionListener>(listener);
    }
}
