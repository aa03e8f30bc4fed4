using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// One bound IP endpoint: its listening socket(s), its acceptor threads (event loops, or mutex acceptors for
/// Serialized), and the bounded channel through which they hand connections to Kestrel's accept loop (the shape of
/// Kestrel's <c>NamedPipeConnectionListener</c>).
/// </summary>
internal sealed class AcceptStrategyConnectionListener : IConnectionListener
{
    // A few connections per acceptor smooth out Kestrel's dispatch; beyond that they wait in the kernel's queue.
    internal const int QueuedConnectionsPerAcceptor = 4;
    private const int UncancellableCheckMilliseconds = 20;

    private readonly List<Socket> _sockets;
    private readonly IAcceptMutexFactory? _mutexFactory;
    private readonly SocketConnectionContextFactory _connectionFactory;
    private readonly Channel<ConnectionContext> _accepted;
    private readonly StopSignal _stop = new();
    private readonly StopSignal? _shutdown;
    private readonly NativeConnectionSettings? _native;
    private readonly TaskCompletionSource[] _threadExits;
    private readonly CancellationTokenSource _disposing = new();
    private readonly Acceptor[] _acceptors;
    private bool _started;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private Task? _unbind;
    private Task? _dispose;

    public AcceptStrategyConnectionListener(
        Socket[] sockets,
        AcceptStrategy strategy,
        int acceptors,
        IAcceptMutexFactory? mutexFactory,
        SocketTransportOptions socketOptions,
        AcceptStrategyMetrics metrics,
        ILogger logger,
        ILoggerFactory loggerFactory,
        IAcceptedConnectionObserver? observer = null,
        IMemoryPoolFactory<byte>? memoryPoolFactory = null)
    {
        _sockets = [.. sockets];
        _mutexFactory = mutexFactory;
        _logger = logger;
        EndPoint = sockets[0].LocalEndPoint!;

        // Built as Kestrel's own listener builds it (FinOnError and the memory pool included): Serialized connections,
        // and sockets a worker adopts, are Kestrel's SocketConnection exactly as under UseSockets().
        _connectionFactory = new SocketConnectionContextFactory(
            SocketTransportInternals.FactoryOptions(socketOptions),
            loggerFactory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"));

        _accepted = Channel.CreateBounded<ConnectionContext>(new BoundedChannelOptions(acceptors * QueuedConnectionsPerAcceptor)
        {
            SingleReader = true,
            SingleWriter = acceptors == 1,
            FullMode = BoundedChannelFullMode.Wait,
        });

        // Without an accept mutex each acceptor is an event loop that serves its own connections. An acceptor waiting
        // for a mutex cannot, so Serialized keeps Kestrel's socket connections.
        if (mutexFactory is null)
        {
            _shutdown = new StopSignal();
            _native = new NativeConnectionSettings(memoryPoolFactory, socketOptions, loggerFactory.CreateLogger(ConnectionLog.CategoryName));
        }

        _threadExits = new TaskCompletionSource[acceptors];
        var context = new AcceptorContext(EndPoint, strategy, _stop, _accepted.Writer, metrics, logger, observer, _disposing.Token);

        // Every descriptor first, so a failed dup leaves no thread behind. A failure half-way closes every descriptor
        // made here (dups, epoll sets, flock files, eventfds); the caller's sockets stay the caller's.
        _acceptors = new Acceptor[acceptors];
        try
        {
            for (var i = _sockets.Count; i < acceptors; i++)
            {
                _sockets.Add(ListenSocketBinder.Duplicate(_sockets[0]));
            }

            for (var i = 0; i < acceptors; i++)
            {
                if (mutexFactory is null)
                {
                    _acceptors[i] = new EventLoop(i, _sockets[i], _native!, _shutdown!, context);
                }
                else
                {
                    var mutex = mutexFactory.Create();
                    try
                    {
                        _acceptors[i] = new MutexAcceptor(i, _sockets[i], mutex, _connectionFactory, socketOptions.NoDelay, context);
                    }
                    catch
                    {
                        mutex.Dispose();
                        throw;
                    }
                }

                _threadExits[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            if (_native is not null && socketOptions.NoDelay && EndPoint is IPEndPoint)
            {
                // Accepted sockets inherit TCP_NODELAY from the listening socket on Linux: one call here instead of one per connection.
                _sockets.ForEach(s => s.NoDelay = true);
            }
        }
        catch
        {
            Array.ForEach(_acceptors, a => a?.Dispose());
            _sockets.Skip(sockets.Length).ToList().ForEach(s => s.Dispose());
            _stop.Dispose();
            _shutdown?.Dispose();
            _native?.Dispose();
            _disposing.Dispose();
            _connectionFactory.Dispose();
            throw;
        }
    }

    /// <summary>Connections each acceptor has handed to Kestrel so far, in acceptor order.</summary>
    public IEnumerable<long> AcceptedPerAcceptor => _acceptors.Select(a => a.Accepted);

    /// <summary>Starts the acceptor threads. Until then connections wait in the kernel's queue.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_started || _unbind is not null)
            {
                return;
            }

            _started = true;
        }

        var portTag = EndPoint is IPEndPoint ip ? ip.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unix";
        for (var i = 0; i < _acceptors.Length; i++)
        {
            var acceptor = _acceptors[i];
            var (socket, threadExited) = (_sockets[i], _threadExits[i]);

            // The OS keeps 15 characters of a thread's name: "acc:PORT#N" stays recognisable in top -H and /proc/PID/task.
            acceptor.Start($"acc:{portTag}#{i}", () =>
            {
                // The acceptor closes its own descriptor: one left waiting in flock(2) at unbind still uses it.
                socket.Dispose();
                acceptor.Dispose();
                acceptor.ListeningEnded.TrySetResult();
                threadExited.SetResult();
            });
        }
    }

    /// <summary>
    /// Hands an already connected socket to Kestrel like an accepted connection (the socket is this listener's from
    /// here on, disposed if it cannot be handed over). No acceptor sees it, and no observer is told.
    /// </summary>
    public async ValueTask AdoptAsync(Socket connected, CancellationToken cancellationToken)
    {
        ConnectionContext? connection = null;
        try
        {
            connection = _connectionFactory.Create(connected);
            await _accepted.Writer.WriteAsync(connection, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            connected.Dispose();
            throw;
        }
    }

    public EndPoint EndPoint { get; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        // Connections already queued when unbinding are still handed out; null once the acceptors are gone.
        while (await _accepted.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_accepted.Reader.TryRead(out var connection))
            {
                return connection;
            }
        }

        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _unbind ??= StopAcceptorsAsync();
            return new ValueTask(_unbind);
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _dispose ??= DisposeCoreAsync();
            return new ValueTask(_dispose);
        }
    }

    private async Task StopAcceptorsAsync()
    {
        _stop.Set();

        bool started;
        lock (_gate)
        {
            started = _started;
        }

        if (!started)
        {
            for (var i = 0; i < _acceptors.Length; i++)
            {
                _sockets[i].Dispose();
                _acceptors[i].Dispose();
                _acceptors[i].ListeningEnded.TrySetResult();
                _threadExits[i].TrySetResult();
            }
        }

        // Wait for every acceptor except one blocked in flock(2): it exits by itself once it gets the lock, closing
        // its own descriptor. Only then is a descriptor closed, so none is polled after its number is reused.
        while (true)
        {
            var waiting = _acceptors.Where(a => !a.ListeningEnded.Task.IsCompleted && !a.InUncancellableWait).Select(a => a.ListeningEnded.Task).ToArray();
            if (waiting.Length == 0)
            {
                break;
            }

            await Task.WhenAny(Task.WhenAll(waiting), Task.Delay(UncancellableCheckMilliseconds)).ConfigureAwait(false);
        }

        _accepted.Writer.TryComplete();
        AcceptStrategyLog.ListenerUnbound(_logger, EndPoint);
    }

    private async Task DisposeCoreAsync()
    {
        // An acceptor blocked handing over to a Kestrel that no longer reads gives up now.
        _disposing.Cancel();
        await UnbindAsync().ConfigureAwait(false);

        while (_accepted.Reader.TryRead(out var orphan))
        {
            await orphan.DisposeAsync().ConfigureAwait(false);
        }

        if (_shutdown is not null)
        {
            // The event loops have served their connections until now; Kestrel is done with them.
            _shutdown.Set();
            await Task.WhenAll(_threadExits.Select(e => e.Task)).ConfigureAwait(false);
            _shutdown.Dispose();
            _native!.Dispose();
        }

        _mutexFactory?.Dispose();
        _connectionFactory.Dispose();

        // An acceptor still in flock(2) checks the stop signal when it wakes; leave it to the process.
        if (_threadExits.All(e => e.Task.IsCompleted))
        {
            _stop.Dispose();
            _disposing.Dispose();
        }
    }
}
