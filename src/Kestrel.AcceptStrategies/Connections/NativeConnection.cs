using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// An accepted TCP connection driven by its acceptor's event loop instead of .NET's socket engine: the loop reads it on
/// its own thread when epoll reports input, and the response is sent by the thread that flushes it. Kestrel's
/// <c>SocketConnection</c> is the model for everything Kestrel sees: pipes, completion reasons, <see cref="ConnectionClosed"/>,
/// RST on abort (FIN with <c>FinOnError</c>), the transport events, the features.
/// </summary>
/// <remarks>
/// <para>
/// The connection owns its state: reading (paused, ended, the peer's close seen), sending (waiting for room) and
/// shutting down (once, with a reason). <see cref="SocketIO"/> makes the calls and never calls back.
/// </para>
/// <para>
/// Reads are edge-triggered, as nginx reads: until a short read, then nothing until the next edge. A close that arrives
/// with the last bytes raises no later edge, so once an event reports the peer's FIN or a reset (<c>EPOLLRDHUP</c>,
/// <c>EPOLLHUP</c>, <c>EPOLLERR</c>) reading goes on past a short read until <c>recv</c> reports the end or the error.
/// </para>
/// <para>
/// Application code runs on the loop only when the user opted into <c>UnsafePreferInlineScheduling</c>, and then only
/// until it holds the loop too long (<see cref="LoopScheduler"/>): otherwise the input pipe's reader and the output
/// pipe's writer resume on the thread pool, and <see cref="ConnectionClosed"/> is cancelled from the thread pool.
/// </para>
/// </remarks>
internal sealed class NativeConnection : ConnectionContext,
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IMemoryPoolFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature,
    IConnectionSocketFeature
{
    /// <summary>The registration every connection starts with: input and the peer's close, edge-triggered.</summary>
    public const uint ReadEvents = Libc.EPOLLIN | Libc.EPOLLRDHUP | Libc.EPOLLET;

    private const uint HangupEvents = Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR;

    private readonly ConnectionDescriptor _descriptor;
    private readonly NativeConnectionSettings _settings;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closed = new();

    // Completed once ConnectionClosed's callbacks have run: disposal waits for them, as with Kestrel's transport.
    private readonly TaskCompletionSource _closedCallbacksRan = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly FeatureCollection _features = new(7);
    private Epoll? _epoll;
    private ConnectionTable? _table;
    private ulong _token;
    private Task _sending = Task.CompletedTask;
    private IDictionary<object, object?>? _items;
    private string? _connectionId;

    // Reading: the loop and a resumed flush take turns under _receiveGate.
    private readonly object _receiveGate = new();
    private bool _readEnded;
    private bool _readPaused;
    private (bool Pending, Exception? Error) _endAfterFlush;
    private volatile bool _peerClosed;

    // Sending: a send that found the socket full waits for the loop's EPOLLOUT.
    private readonly object _sendGate = new();
    private TaskCompletionSource? _writable;
    private bool _writableArmed;

    // EPOLLOUT (or a shutdown) came while no send was waiting: the next wait returns at once, so an edge that fell
    // between a failed send and its wait is not lost. Never set by the wait itself, so a full socket never spins.
    private bool _writableSeen;

    // Shutting down: once, with the first reason; _socket is the socket feature's duplicate descriptor, if asked for.
    private volatile Exception? _shutdownReason;
    private Socket? _socket;
    private int _closedFired;

    public NativeConnection(int fd, EndPoint localEndPoint, EndPoint? remoteEndPoint, NativeConnectionSettings settings)
    {
        _descriptor = new ConnectionDescriptor(fd);
        _settings = settings;
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        _input = new Pipe(settings.InputOptions);
        _output = new Pipe(settings.OutputOptions);
        Transport = new DuplexPipe(_input.Reader, _output.Writer);

        _features.Set<IConnectionIdFeature>(this);
        _features.Set<IConnectionTransportFeature>(this);
        _features.Set<IConnectionItemsFeature>(this);
        _features.Set<IMemoryPoolFeature>(this);
        _features.Set<IConnectionLifetimeFeature>(this);
        _features.Set<IConnectionEndPointFeature>(this);
        _features.Set<IConnectionSocketFeature>(this);
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

    public MemoryPool<byte> MemoryPool => _settings.MemoryPool;

    /// <summary>
    /// The connection's socket, for socket options (<c>SetSocketOption</c>, keep-alive, buffer sizes) and addresses. It
    /// wraps a duplicate of the descriptor, made on first use and closed with the connection; the event loop does the
    /// I/O, so reading or writing through it is not supported.
    /// </summary>
    public Socket Socket
    {
        get
        {
            lock (_sendGate)
            {
                if (_socket is not null)
                {
                    return _socket;
                }

                ObjectDisposedException.ThrowIf(_shutdownReason is not null, this);
                return _socket = DuplicateSocket();
            }
        }
    }

    /// <summary>
    /// Called by the event loop once it has taken a slot for this connection and before it registers the descriptor:
    /// where later interest (<c>EPOLLOUT</c>) is registered and the slot is given back.
    /// </summary>
    public void Attach(Epoll epoll, ConnectionTable table, ulong token)
    {
        _epoll = epoll;
        _table = table;
        _token = token;
    }

    /// <summary>Starts the send loop; after the first read and the registration.</summary>
    public void StartSending() => _sending = SendAsync();

    /// <summary>The loop saw readiness for this connection.</summary>
    public void OnEvents(uint events)
    {
        if ((events & HangupEvents) != 0)
        {
            _peerClosed = true;
        }

        if ((events & (Libc.EPOLLIN | HangupEvents)) != 0)
        {
            Receive();
        }

        if ((events & (Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            // Inline: the rest of the send is the transport's own code, safe on the loop's thread.
            OnWritable(inline: true);
        }
    }

    /// <summary>
    /// Reads what the socket holds into the input pipe, flushing to Kestrel whenever the pipe reaches its limit
    /// (<c>MaxReadBufferSize</c>): a flush Kestrel has no room for pauses reading until it completes.
    /// </summary>
    public void Receive()
    {
        lock (_receiveGate)
        {
            while (!_readEnded && !_readPaused)
            {
                var (received, outcome, error) = ReadAvailable();
                if (received)
                {
                    var flush = _input.Writer.FlushAsync();
                    if (!flush.IsCompleted)
                    {
                        _readPaused = true;
                        _endAfterFlush = (outcome == ReadOutcome.End, error);
                        ConnectionLog.ConnectionPause(_settings.Logger, this);
                        ResumeAfter(flush.AsTask());
                        return;
                    }

                    var result = flush.GetAwaiter().GetResult();
                    if (result.IsCompleted || result.IsCanceled)
                    {
                        EndReading(null);
                        return;
                    }
                }

                if (outcome == ReadOutcome.End)
                {
                    EndReading(error);
                }

                if (outcome != ReadOutcome.Full)
                {
                    return;
                }
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

    // Called once Kestrel is done with the connection. Returns, as Kestrel's SocketConnection does, only once
    // ConnectionClosed's callbacks have run: the server's stop, which waits for its connections' disposal, then never
    // overtakes them.
    public override async ValueTask DisposeAsync()
    {
        _input.Reader.Complete();
        _output.Writer.Complete();
        await _sending.ConfigureAwait(false);

        // The send loop's end shut the connection down, which ends reading and fires ConnectionClosed; a connection
        // disposed before sending started is shut down here (a no-op otherwise).
        Shutdown(null);
        await _closedCallbacksRan.Task.ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);

        // _closed is not disposed: a cancellation queued to the thread pool may still be on its way, and a token
        // source without a timer holds nothing to release.
    }

    private enum ReadOutcome
    {
        /// <summary>The socket has nothing more until the next edge.</summary>
        Drained,

        /// <summary>The pipe reached its limit; flush, then read on.</summary>
        Full,

        /// <summary>FIN, an error, or this side's shutdown: reading is over.</summary>
        End,
    }

    /// <summary>One pass of reads into the pipe (unflushed): until the socket is drained, the pipe full, or the end.</summary>
    private (bool Received, ReadOutcome Outcome, Exception? Error) ReadAvailable()
    {
        var writer = _input.Writer;
        var pauseThreshold = _settings.InputOptions.PauseWriterThreshold;
        var received = false;
        while (true)
        {
            var memory = writer.GetMemory(NativeConnectionSettings.MinimumReadSize);
            var n = SocketIO.Receive(_descriptor, memory.Span, out var errno);
            if (n > 0)
            {
                writer.Advance(n);
                received = true;
                if (n < memory.Length && !_peerClosed)
                {
                    // A short read emptied the socket's queue; the next arrival is a new edge.
                    return (received, ReadOutcome.Drained, null);
                }

                if (pauseThreshold > 0 && writer.UnflushedBytes >= pauseThreshold)
                {
                    return (received, ReadOutcome.Full, null);
                }

                continue;
            }

            if (_shutdownReason is not null)
            {
                // Our own shutdown ended it (a zero read after shutdown(2), or the descriptor closed): its reason stands.
                return (received, ReadOutcome.End, null);
            }

            if (n == 0)
            {
                ConnectionLog.ConnectionReadFin(_settings.Logger, this);
                return (received, ReadOutcome.End, null);
            }

            switch (errno)
            {
                case Libc.EINTR:
                    continue;
                case Libc.EAGAIN:
                    return (received, ReadOutcome.Drained, null);
            }

            if (SocketErrors.IsReset(errno))
            {
                ConnectionLog.ConnectionReset(_settings.Logger, this);
                return (received, ReadOutcome.End, SocketErrors.ToResetException(errno));
            }

            var error = SocketErrors.ToSocketException(errno);
            ConnectionLog.ConnectionError(_settings.Logger, this, error);
            return (received, ReadOutcome.End, error);
        }
    }

    private void ResumeAfter(Task<FlushResult> flush) => _ = flush.ContinueWith(
        static (task, state) =>
        {
            var connection = (NativeConnection)state!;
            var stop = !task.IsCompletedSuccessfully || task.Result.IsCompleted || task.Result.IsCanceled;
            lock (connection._receiveGate)
            {
                connection._readPaused = false;
                ConnectionLog.ConnectionResume(connection._settings.Logger, connection);
                if (stop || connection._endAfterFlush.Pending)
                {
                    connection.EndReading(stop ? null : connection._endAfterFlush.Error);
                    return;
                }
            }

            // Edge-triggered: whatever arrived while paused raised no new event, so read it now.
            connection.Receive();
        },
        this,
        CancellationToken.None,
        TaskContinuationOptions.DenyChildAttach,
        TaskScheduler.Default);

    /// <summary>Stops reading for good (under <see cref="_receiveGate"/>): Kestrel's input completes and ConnectionClosed fires.</summary>
    private void EndReading(Exception? error)
    {
        if (_readEnded)
        {
            return;
        }

        _readEnded = true;

        // If the connection was shut down, that is why reading ended.
        _input.Writer.Complete(_shutdownReason ?? error);
        FireConnectionClosed();
    }

    /// <summary>
    /// Sends what Kestrel flushes. The output pipe's reader resumes inline, so the thread that flushed sends; only a full
    /// socket makes it wait, for the loop's <c>EPOLLOUT</c>, and then the loop's thread sends the rest.
    /// </summary>
    private async Task SendAsync()
    {
        Exception? shutdownReason = null;
        Exception? unexpectedError = null;
        var output = _output.Reader;
        try
        {
            while (true)
            {
                var result = await output.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break;
                }

                var buffer = result.Buffer;
                var errno = 0;
                while (!buffer.IsEmpty)
                {
                    var sent = SocketIO.Send(_descriptor, buffer, out errno);
                    if (sent > 0)
                    {
                        buffer = buffer.Slice(sent);
                        errno = 0;
                    }
                    else if (errno == Libc.EAGAIN)
                    {
                        await WaitWritableAsync().ConfigureAwait(false);
                    }
                    else if (errno != Libc.EINTR)
                    {
                        break;
                    }
                }

                if (errno is not (0 or Libc.EAGAIN or Libc.EINTR))
                {
                    // As Kestrel's transport: a reset (or a send after our own shutdown) is expected and only logged at
                    // Debug; only an unexpected error reaches Kestrel's writers as an error.
                    if (_shutdownReason is not null || SocketErrors.IsAbort(errno))
                    {
                        shutdownReason = _shutdownReason;
                    }
                    else if (SocketErrors.IsReset(errno))
                    {
                        shutdownReason = SocketErrors.ToResetException(errno);
                        ConnectionLog.ConnectionReset(_settings.Logger, this);
                    }
                    else
                    {
                        shutdownReason = unexpectedError = SocketErrors.ToSocketException(errno);
                        ConnectionLog.ConnectionError(_settings.Logger, this, unexpectedError);
                    }

                    break;
                }

                output.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            shutdownReason = unexpectedError = e;
            ConnectionLog.ConnectionError(_settings.Logger, this, e);
        }
        finally
        {
            Shutdown(shutdownReason);
            output.Complete(unexpectedError);
        }
    }

    /// <summary>The loop saw the socket writable (or failed), or the connection shut down: a waiting send tries again.</summary>
    private void OnWritable(bool inline)
    {
        TaskCompletionSource? waiter;
        lock (_sendGate)
        {
            waiter = _writable;
            _writable = null;
            _writableSeen = waiter is null;
        }

        if (waiter is null)
        {
            return;
        }

        if (inline)
        {
            waiter.TrySetResult();
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(static w => w.TrySetResult(), waiter, preferLocal: false);
        }
    }

    private Task WaitWritableAsync()
    {
        var waiter = new TaskCompletionSource();
        bool arm;
        lock (_sendGate)
        {
            if (_writableSeen || _shutdownReason is not null)
            {
                _writableSeen = false;
                return Task.CompletedTask;
            }

            _writable = waiter;
            arm = !_writableArmed;
            _writableArmed = true;
        }

        // Edge-triggered EPOLLOUT, added the first time a send fills the socket. Re-registering re-checks readiness,
        // so room that appeared since the failed send still raises an event; afterwards every drain of a full buffer does.
        if (arm && Register(ReadEvents | Libc.EPOLLOUT) is var errno and not 0)
        {
            // Closed meanwhile: the retried send finds out. Anything else is unexpected.
            _ = SocketErrors.IsAbort(errno) ? waiter.TrySetResult() : waiter.TrySetException(SocketErrors.ToSocketException(errno));
        }

        return waiter.Task;
    }

    /// <summary>Changes the connection's registration; 0, or the errno, <c>EBADF</c> once the connection is over.</summary>
    private int Register(uint events)
    {
        var added = false;
        try
        {
            _descriptor.DangerousAddRef(ref added);

            // A graceful shutdown takes the descriptor out of the set before it closes: over, as when closed.
            var errno = _epoll!.Modify(_descriptor.Fd, events, _token);
            return errno == Libc.ENOENT ? Libc.EBADF : errno;
        }
        catch (ObjectDisposedException)
        {
            return Libc.EBADF;
        }
        finally
        {
            if (added)
            {
                _descriptor.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Ends the connection once, as Kestrel's transport does: with a reason (an abort, a reset, an error) it is reset
    /// (RST, linger 0), unless <c>FinOnError</c> is set; a graceful end (no reason) shuts the socket down both ways
    /// (FIN). Then reading ends with the reason, the slot is given back, a send waiting for room wakes, and the
    /// descriptor closes once no call is using it.
    /// </summary>
    private void Shutdown(Exception? reason)
    {
        var shutdownReason = reason ?? new ConnectionAbortedException("The accept-strategy transport's send loop completed gracefully.");
        lock (_sendGate)
        {
            if (_shutdownReason is not null)
            {
                return;
            }

            // Before the descriptor closes, so a read that fails because of it knows why.
            _shutdownReason = shutdownReason;
        }

        var abortive = reason is not null && !_settings.FinOnError;
        if (abortive)
        {
            ConnectionLog.ConnectionWriteRst(_settings.Logger, this, shutdownReason.Message);
        }
        else
        {
            ConnectionLog.ConnectionWriteFin(_settings.Logger, this, shutdownReason.Message);
        }

        // The socket feature's duplicate first: with it open, the close below would not be the last, and no RST would go.
        _socket?.Dispose();
        _descriptor.Close(abortive, _epoll);

        // A read paused on a full pipe would wait for Kestrel forever: wake it so reading ends with the reason.
        _input.Writer.CancelPendingFlush();
        lock (_receiveGate)
        {
            if (!_readPaused)
            {
                EndReading(null);
            }
        }

        _table?.Release(_token);

        // A send waiting for EPOLLOUT would wait forever now that the descriptor is out of the epoll set. It ends from the
        // thread pool, not inside this call: ending it completes the output pipe, which releases the app's pending flush,
        // and Kestrel cancels RequestAborted only after its abort of the transport returns, as with its own transport,
        // whose send ends from the socket engine's thread.
        OnWritable(inline: false);
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        // Kestrel's callbacks abort requests and may do real work; they never run on the loop nor inside the call
        // (an abort, a completion) that ended the connection, as with Kestrel's own transport.
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.CancelConnectionClosedToken(), this, preferLocal: false);
    }

    private void CancelConnectionClosedToken()
    {
        try
        {
            _closed.Cancel();
        }
        catch (Exception e)
        {
            // A callback threw (the app's, on ConnectionClosed): logged, as Kestrel's transport does, not the end of the process.
            ConnectionLog.ConnectionClosedCallbackFailed(_settings.Logger, ConnectionId, e);
        }
        finally
        {
            _closedCallbacksRan.TrySetResult();
        }
    }

    private Socket DuplicateSocket()
    {
        var added = false;
        try
        {
            _descriptor.DangerousAddRef(ref added);
            var duplicate = Libc.Fcntl(_descriptor.Fd, Libc.F_DUPFD_CLOEXEC, 0);
            if (duplicate < 0)
            {
                throw SocketErrors.ToSocketException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
            }

            var handle = new SafeSocketHandle(duplicate, ownsHandle: true);
            try
            {
                return new Socket(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
        finally
        {
            if (added)
            {
                _descriptor.DangerousRelease();
            }
        }
    }
}
