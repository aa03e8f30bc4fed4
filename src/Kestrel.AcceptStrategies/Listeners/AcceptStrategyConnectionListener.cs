using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// One bound IP endpoint: its listening socket(s), its acceptor threads, and the bounded channel through which they
/// hand connections to Kestrel's accept loop (the shape of Kestrel's <c>NamedPipeConnectionListener</c>).
/// </summary>
internal sealed class AcceptStrategyConnectionListener : IConnectionListener
{
    // A few connections per acceptor smooth out Kestrel's dispatch; beyond that they wait in the kernel's queue.
    private const int QueuedConnectionsPerAcceptor = 4;

    private readonly List<Socket> _sockets;
    private readonly IAcceptMutexFactory? _mutexFactory;
    private readonly SocketConnectionContextFactory _connectionFactory;
    private readonly Channel<ConnectionContext> _accepted;
    private readonly StopSignal _stop = new();
    private readonly CancellationTokenSource _disposing = new();
    private readonly Task[] _acceptorExits;
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
        ILogger transportLogger)
    {
        _sockets = [.. sockets];
        _mutexFactory = mutexFactory;
        _logger = logger;
        EndPoint = sockets[0].LocalEndPoint!;

        _connectionFactory = new SocketConnectionContextFactory(
            new SocketConnectionFactoryOptions
            {
                IOQueueCount = socketOptions.IOQueueCount,
                WaitForDataBeforeAllocatingBuffer = socketOptions.WaitForDataBeforeAllocatingBuffer,
                MaxReadBufferSize = socketOptions.MaxReadBufferSize,
                MaxWriteBufferSize = socketOptions.MaxWriteBufferSize,
                UnsafePreferInlineScheduling = socketOptions.UnsafePreferInlineScheduling,
            },
            transportLogger);

        _accepted = Channel.CreateBounded<ConnectionContext>(new BoundedChannelOptions(acceptors * QueuedConnectionsPerAcceptor)
        {
            SingleReader = true,
            SingleWriter = acceptors == 1,
            FullMode = BoundedChannelFullMode.Wait,
        });

        // Every descriptor first, so a failed dup leaves no thread behind.
        for (var i = _sockets.Count; i < acceptors; i++)
        {
            _sockets.Add(Duplicate(_sockets[0]));
        }

        _acceptorExits = new Task[acceptors];
        var portTag = ((IPEndPoint)EndPoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < acceptors; i++)
        {
            var acceptor = new Acceptor(
                i,
                _sockets[i],
                mutexFactory?.Create(),
                _stop,
                _connectionFactory,
                _accepted.Writer,
                socketOptions.NoDelay,
                strategy,
                EndPoint,
                metrics,
                logger,
                _disposing.Token);

            var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _acceptorExits[i] = exited.Task;
            var thread = new Thread(() =>
            {
                try
                {
                    acceptor.Run();
                }
                finally
                {
                    exited.SetResult();
                }
            })
            {
                IsBackground = true,
                // The OS keeps 15 characters: "acc:PORT#N" stays recognisable in top -H and /proc/PID/task.
                Name = $"acc:{portTag}#{i}",
            };
            thread.Start();
        }
    }

    public EndPoint EndPoint { get; }

    /// <summary>
    /// A second descriptor for a shared listening socket: each acceptor needs its own <see cref="Socket"/>, or .NET
    /// queues their accepts behind each other.
    /// </summary>
    private static Socket Duplicate(Socket shared)
    {
        var fd = Libc.Fcntl((int)shared.SafeHandle.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new SocketException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }

        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

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
        await Task.WhenAll(_acceptorExits).ConfigureAwait(false);

        // Only now: closing a socket that an acceptor still polls would let a recycled descriptor number be accepted on.
        foreach (var socket in _sockets)
        {
            socket.Dispose();
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

        _mutexFactory?.Dispose();
        _connectionFactory.Dispose();
        _stop.Dispose();
        _disposing.Dispose();
    }
}
