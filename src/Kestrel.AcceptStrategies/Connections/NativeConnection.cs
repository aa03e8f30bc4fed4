using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// An accepted TCP connection driven by its acceptor's event loop instead of .NET's socket engine: the acceptor reads
/// the first bytes and later ones on its own thread (nothing to hop through), and the response is sent by the thread
/// that flushes it. Kestrel's <c>SocketConnection</c> is the model for everything Kestrel sees (pipes, completion
/// reasons, <see cref="ConnectionClosed"/>).
/// </summary>
/// <remarks>
/// <para>
/// Per connection-per-request request this saves what .NET's engine spends: the zero-byte peeks, the <c>fcntl</c>
/// pair that makes the socket non-blocking, the per-connection <c>TCP_NODELAY</c> (inherited from the listening
/// socket), the epoll thread's wake-ups (for writability at registration, then for the data) and the hop through
/// Kestrel's I/O queue before each send.
/// </para>
/// <para>
/// Application code never runs on the loop: the input pipe's reader is resumed on the thread pool (or inline when the
/// user opted into <c>UnsafePreferInlineScheduling</c>), and a flush that waits for room resumes on the thread pool.
/// </para>
/// </remarks>
internal sealed class NativeConnection : ConnectionContext
{
    private readonly ConnectionDescriptor _descriptor;
    private readonly NativeConnectionSettings _settings;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly FeatureCollection _features = new(6);
    private readonly ConnectionSending _sending;
    private readonly ConnectionReceiving _receiving;
    private ulong _token;
    private int _epoll = -1;
    private ConnectionTable? _table;
    private int _closedFired;
    private int _shutDown;
    private volatile Exception? _shutdownReason;
    private Task _sendLoop = Task.CompletedTask;
    private IDictionary<object, object?>? _items;
    private string? _connectionId;

    public NativeConnection(int fd, EndPoint localEndPoint, EndPoint? remoteEndPoint, NativeConnectionSettings settings)
    {
        _descriptor = new ConnectionDescriptor(fd);
        _settings = settings;
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        _input = new Pipe(settings.InputOptions);
        _output = new Pipe(settings.OutputOptions);
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        _sending = new ConnectionSending(this);
        _receiving = new ConnectionReceiving(this, _input.Writer, settings.InputOptions.PauseWriterThreshold);

        var features = new ConnectionFeatures(this);
        _features.Set<IConnectionIdFeature>(features);
        _features.Set<IConnectionTransportFeature>(features);
        _features.Set<IConnectionItemsFeature>(features);
        _features.Set<IMemoryPoolFeature>(features);
        _features.Set<IConnectionLifetimeFeature>(features);
        _features.Set<IConnectionEndPointFeature>(features);
    }

    public override string ConnectionId
    {
        get => _connectionId ??= ConnectionIds.Next();
        set => _connectionId = value;
    }

    public override IFeatureCollection Features => _features;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException("The transport owns ConnectionClosed.");
    }

    internal MemoryPool<byte> MemoryPool => _settings.MemoryPool;

    internal PipeReader Output => _output.Reader;

    internal Exception? ShutdownReason => _shutdownReason;

    internal ConnectionDescriptor Descriptor => _descriptor;

    /// <summary>
    /// Called on the loop's thread right after accept: reads what the client already sent (with TCP_DEFER_ACCEPT, the
    /// request), registers for later readiness, and starts the send loop.
    /// </summary>
    public void Start(int epoll, ConnectionTable table)
    {
        _epoll = epoll;
        _table = table;
        _token = table.Add(this);
        _receiving.Receive();
        if (!Register(SocketCalls.EPOLL_CTL_ADD, SocketCalls.EPOLLIN | SocketCalls.EPOLLRDHUP | SocketCalls.EPOLLET, out var errno))
        {
            Shutdown(new ConnectionAbortedException($"Registering the connection with its event loop failed ({errno})."));
        }

        _sendLoop = _sending.RunAsync();
    }

    /// <summary>The loop saw readiness for this connection (any thread-safe order of calls is fine).</summary>
    public void OnEvents(uint events)
    {
        if ((events & (SocketCalls.EPOLLIN | SocketCalls.EPOLLRDHUP | SocketCalls.EPOLLHUP | SocketCalls.EPOLLERR)) != 0)
        {
            _receiving.Receive();
        }

        if ((events & (SocketCalls.EPOLLOUT | SocketCalls.EPOLLHUP | SocketCalls.EPOLLERR)) != 0)
        {
            _sending.OnWritable();
        }
    }

    /// <summary>Registers (or re-registers) the descriptor in the loop's epoll set; false with the errno on failure.</summary>
    internal unsafe bool Register(int operation, uint events, out int errno)
    {
        var ev = stackalloc byte[Internal.Libc.EpollEventBytes];
        *(uint*)ev = events;
        *(ulong*)(ev + SocketCalls.EpollDataOffset) = _token;
        var added = false;
        try
        {
            _descriptor.DangerousAddRef(ref added);
            if (SocketCalls.EpollCtl(_epoll, operation, _descriptor.Fd, ev) == 0)
            {
                errno = 0;
                return true;
            }

            errno = Marshal.GetLastPInvokeError();
            return false;
        }
        catch (ObjectDisposedException)
        {
            errno = 0;
            return false;
        }
        finally
        {
            if (added)
            {
                _descriptor.DangerousRelease();
            }
        }
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        // As Kestrel's SocketConnection: shut down at once (a send waiting for room in a socket the client no longer
        // reads would never see a cancelled read), then stop the send loop at its next read.
        Shutdown(abortReason);
        _output.Reader.CancelPendingRead();
    }

    public override async ValueTask DisposeAsync()
    {
        _input.Reader.Complete();
        _output.Writer.Complete();
        await _sendLoop.ConfigureAwait(false);
        Shutdown(null);
        await base.DisposeAsync().ConfigureAwait(false);

        // _closed is not disposed: a cancellation queued by the loop may still be on its way, and a token source
        // without a timer holds nothing to release.
    }

    /// <summary>
    /// Ends the connection once: shuts the socket down both ways (as Kestrel does, so a dup elsewhere cannot keep it
    /// open), ends reading with <paramref name="reason"/>, fires <see cref="ConnectionClosed"/>, and closes the descriptor
    /// once no call is using it.
    /// </summary>
    internal void Shutdown(Exception? reason)
    {
        if (Interlocked.Exchange(ref _shutDown, 1) != 0)
        {
            return;
        }

        _shutdownReason ??= reason ?? new ConnectionAbortedException("The accept-strategy transport's send loop completed gracefully.");
        var added = false;
        try
        {
            _descriptor.DangerousAddRef(ref added);
            _ = SocketCalls.Shutdown(_descriptor.Fd, SocketCalls.SHUT_RDWR);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added)
            {
                _descriptor.DangerousRelease();
            }
        }

        _input.Writer.CancelPendingFlush();
        _receiving.End(_shutdownReason);
        _descriptor.Dispose();
        _table?.Release(_token);

        // A send waiting for EPOLLOUT would wait forever now that the descriptor is out of the epoll set: it retries,
        // finds the descriptor closed, and the send loop ends.
        _sending.OnWritable();
    }

    internal void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        // Kestrel's callbacks abort requests and may do real work; they never run on the loop nor inside the call
        // (an abort, a completion) that ended the connection, as with Kestrel's own transport. Measured: no dearer
        // than cancelling inline.
        ThreadPool.UnsafeQueueUserWorkItem(static c => c._closed.Cancel(), this, preferLocal: false);
    }
}
