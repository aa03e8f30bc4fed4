using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// An acceptor without an accept mutex (ThunderingHerd, ReusePort), as an nginx worker is: one thread and one epoll set
/// holding its listening socket and every connection it accepted, which it reads itself, so a connection's reads never
/// wake another thread. It owns the set and the connection table, and registers its connections itself.
/// </summary>
/// <remarks>
/// <para>
/// The listening socket is in the set with <c>EPOLLEXCLUSIVE</c>, so the kernel wakes one idle loop per connection, as
/// it does for threads blocked in <c>accept(2)</c> (Starlet's workers): loops that share a socket without a lock
/// (ThunderingHerd) are not all woken for each connection. The kernel queues an exclusive waiter at the tail of the
/// socket's wait queue and wakes the first idle one from the head, so the loop registered first would take nearly
/// every connection it was idle for; a ThunderingHerd loop therefore takes the socket out and adds it back, to the
/// tail, every <see cref="RearmEvery"/> accepting wake-ups, as nginx does every 16 accepts.
/// </para>
/// <para>
/// The listening socket leaves the set in three cases, and the wait's timeout follows from which: an accept that failed
/// for want of descriptors or memory (back-off: listen again when it ends), a connection Kestrel had no room for (held:
/// listen again once it is handed over; room wakes the loop through an eventfd), and unbinding (the connections queued
/// at that moment are taken, then the socket is closed; the loop serves its open connections until the listener is
/// disposed). Never a blocking write to Kestrel's queue: this thread serves every connection it accepted.
/// </para>
/// <para>
/// Under <c>UnsafePreferInlineScheduling</c> the loop also runs its connections' application code (no thread-pool
/// hand-off per request): what their events resumed waits in its <see cref="LoopScheduler"/> and runs after each
/// event, outside the connection's code, until one resumption holds the loop too long; then the loop logs so and
/// hands its application code to the thread pool for good. One that has not returned (it may be waiting for this very
/// loop) is found by the scheduler's watch, and a new thread takes the loop over from where the held one stopped.
/// </para>
/// <para>
/// Unbinding takes the queued connections because the kernel's one wake-up per connection may have gone to this loop
/// just before its stop was seen: the loops and processes that go on listening on the socket (a ReusePort slot's next
/// generation, ThunderingHerd loops of other workers) were not woken, and would find that connection only when the
/// next one woke them. A client that waits for its answer before it connects again (an HTTP/2 client sends every
/// request on its one connection) waited there until its own timeout.
/// </para>
/// </remarks>
internal sealed class EventLoop : Acceptor
{
    /// <summary>Accepting wake-ups between re-registrations (ThunderingHerd): often enough to spread connections, rarely enough to cost nothing.</summary>
    public const int RearmEvery = 16;

    private const int MaxEvents = 64;

    // struct tcp_info: eight one-byte fields, then rto, ato, snd_mss, rcv_mss and unacked (for a listener: its accept queue).
    private const int TcpInfoUnackedOffset = 24;

    // Accepts tried when leaving a Unix socket, whose queue length is not reported (an empty queue ends them sooner).
    private const int UnixConnectionsTakenWhenLeaving = 4;

    // Epoll data of the loop's own descriptors; a connection's token has a generation of at least 1 in its upper half.
    private const ulong ListenToken = 0, StopToken = 1, ShutdownToken = 2, WakeToken = 3;

    private readonly Epoll _epoll;
    private readonly EventFd _wake;
    private readonly ConnectionTable _connections = new();
    private readonly NativeConnectionSettings _settings;
    private readonly LoopScheduler? _scheduler;
    private readonly EpollEventBuffer _events;
    private readonly int _listenFd;
    private readonly int _rearmEvery;
    private int _wakeups;
    private int _leftover;
    private State _state = State.Listening;
    private long _resumeAt;
    private NativeConnection? _held;

    // The batch of events being handled, in fields so that a thread taking the loop over goes on from where it stopped.
    private bool _inBatch, _readable, _woken;
    private int _count, _next;

    private enum State
    {
        /// <summary>The listening socket is in the set.</summary>
        Listening,

        /// <summary>Out of the set until <see cref="_resumeAt"/> and until no connection is held.</summary>
        Paused,

        /// <summary>Unbinding: out of the set for good, taking the <see cref="_leftover"/> connections queued when it left, then closed.</summary>
        Leaving,

        /// <summary>Unbound: the listening socket is closed; open connections are still served.</summary>
        Stopped,
    }

    /// <summary>An event loop for acceptor <paramref name="id"/>; <paramref name="shutdown"/> is set when the listener is disposed: the loop aborts what is still open and exits.</summary>
    public EventLoop(int id, Socket listenSocket, NativeConnectionSettings settings, StopSignal shutdown, AcceptorContext context)
        : base(id, listenSocket, context)
    {
        if (settings.InlineScheduling)
        {
            _scheduler = new LoopScheduler(
                TimeProvider.System,
                held => ConnectionLog.EventLoopBlocked(settings.Logger, id, context.EndPoint, (long)held.TotalMilliseconds),
                TakeOver);
            settings = settings.ForLoop(_scheduler);
        }

        _settings = settings;
        _listenFd = (int)listenSocket.SafeHandle.DangerousGetHandle();
        _rearmEvery = context.Strategy == AcceptStrategy.ThunderingHerd ? RearmEvery : 0;
        _epoll = new Epoll();
        _wake = new EventFd();
        _events = new EpollEventBuffer(MaxEvents);
        var errno = _epoll.Add(_listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, ListenToken);
        if (errno == 0)
        {
            errno = _epoll.Add(context.Stop.Fd, Libc.EPOLLIN, StopToken);
        }

        if (errno == 0)
        {
            errno = _epoll.Add(shutdown.Fd, Libc.EPOLLIN, ShutdownToken);
        }

        if (errno == 0)
        {
            errno = _epoll.Add(_wake.Fd, Libc.EPOLLIN, WakeToken);
        }

        if (errno != 0)
        {
            Dispose();
            throw new IOException(
                $"Adding the listening socket to an epoll set with EPOLLEXCLUSIVE failed ({Libc.ErrnoName(errno)}); Linux 4.5 or later is needed.");
        }
    }

    public override void Dispose()
    {
        _scheduler?.Dispose();
        _events.Dispose();
        _wake.Dispose();
        _epoll.Dispose();
    }

    protected override bool Run()
    {
        _scheduler?.StartWatch();
        return Serve();
    }

    /// <summary>
    /// The loop, on its first thread or, after a take-over, on the next one, which goes on from where the held thread
    /// stopped (the rest of its batch of events). True once the loop has ended; false when this thread was held in
    /// application code and another carries the loop on: it returns without touching the loop again.
    /// </summary>
    private bool Serve()
    {
        _scheduler?.BindToCurrentThread();
        var owner = true;
        try
        {
            // After a take-over: what the held thread queued goes to the thread pool now, not at the next event.
            _ = _scheduler?.RunReady();

            while (true)
            {
                if (!_inBatch)
                {
                    // Unbinding waits for this: every connection taken has been handed to Kestrel (or given up at dispose).
                    if (_state == State.Stopped && _held is null)
                    {
                        ListeningEnded.TrySetResult();
                    }

                    RotateIfDue();
                    var n = _epoll.Wait(_events, Timeout());
                    if (n < 0)
                    {
                        // epoll itself failing is not something a retry fixes quickly; log once, back off, go on.
                        Thread.Sleep(AcceptFailed(ErrorTag(-n), "epoll_wait " + Libc.ErrnoName(-n)));
                        continue;
                    }

                    (_inBatch, _count, _next, _readable, _woken) = (true, n, 0, false, false);
                }

                while (_next < _count)
                {
                    var ev = _events[_next++];
                    switch (ev.Data)
                    {
                        case ListenToken:
                            _readable = true;
                            break;
                        case StopToken:
                            // A latch: acted on below, and taken out of the set there.
                            break;
                        case ShutdownToken:
                            return true;
                        case WakeToken:
                            _wake.Reset();
                            _woken = true;
                            break;
                        default:
                            if (_connections.Find(ev.Data) is { } connection)
                            {
                                Dispatch(connection, ev.Events);

                                // The application's code its events resumed (UnsafePreferInlineScheduling), outside the
                                // connection's code. A resumption is an async method's continuation and does not throw;
                                // one that did would end the process, as it would on the thread pool.
                                if (_scheduler?.RunReady() == false)
                                {
                                    owner = false;
                                    return false;
                                }
                            }

                            break;
                    }
                }

                AfterEvents();
                _inBatch = false;

                // A safety net: nothing above schedules application code today (Kestrel gets a connection only after
                // its first read; the accept queue resumes Kestrel asynchronously), and the loop must not wait with any queued.
                if (_scheduler?.RunReady() == false)
                {
                    owner = false;
                    return false;
                }
            }
        }
        finally
        {
            // A thread taken over leaves the loop to its new thread, even if what held it threw.
            if (owner && _scheduler?.LeftByCurrentThread != true)
            {
                _held?.Abort(new ConnectionAbortedException("The listener was disposed before Kestrel took this connection."));
                StopListening();
                ListeningEnded.TrySetResult();

                // The listener is being disposed: Kestrel has already given up on whatever is still open.
                foreach (var connection in _connections.Snapshot())
                {
                    connection.Abort(new ConnectionAbortedException("The listener was disposed."));
                }

                _scheduler?.Abandon();
            }
        }
    }

    /// <summary>What a batch of events calls for once each was handled: the held connection, stopping, the back-off, accepting.</summary>
    private void AfterEvents()
    {
        // After the wake-up was consumed: a wake raised from here on stays pending for the next wait.
        if (_held is not null && (_woken || Context.Disposing.IsCancellationRequested))
        {
            OfferHeld();
        }

        if (Context.Stop.IsSet)
        {
            Leave();
        }
        else if (_state == State.Paused)
        {
            if (_held is null && Environment.TickCount64 >= _resumeAt)
            {
                Listen();
            }
        }
        else if (_readable)
        {
            try
            {
                Accept();
            }
            catch (Exception e)
            {
                // Nothing expected throws here; an exception on this thread would end the process.
                Pause(AcceptorFaulted(e));
            }
        }
    }

    /// <summary>
    /// On the watch's thread: application code has held the loop's thread past the threshold and not returned. The loop
    /// goes on on a new thread (the held one leaves it when the code returns), and application code on the pool; false
    /// when no thread could be started.
    /// </summary>
    private bool TakeOver(TimeSpan held)
    {
        // Logged first: nothing may fail once the new thread runs, or the held thread would not know it has left.
        ConnectionLog.EventLoopTakenOver(_settings.Logger, Id, Context.EndPoint, (long)held.TotalMilliseconds);
        try
        {
            StartThread(Serve);
            return true;
        }
        catch (Exception e)
        {
            ConnectionLog.EventLoopTakeOverFailed(_settings.Logger, Id, Context.EndPoint, e);
            return false;
        }
    }

    /// <summary>Blocks while listening or stopped; while paused, until the back-off ends (or a held connection is handed over).</summary>
    private int Timeout() =>
        _state == State.Paused && _held is null ? (int)Math.Clamp(_resumeAt - Environment.TickCount64, 0, int.MaxValue) : -1;

    private void RotateIfDue()
    {
        if (_rearmEvery == 0 || _wakeups < _rearmEvery || _state != State.Listening)
        {
            return;
        }

        // Not waiting while the socket is out of the set, so no connection is missed: one that arrives meanwhile wakes
        // another loop, or is found ready when the socket is added back.
        _wakeups = 0;
        var errno = _epoll.Remove(_listenFd);
        if (errno == 0)
        {
            errno = _epoll.Add(_listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, ListenToken);
        }

        if (errno != 0)
        {
            Pause(AcceptFailed(ErrorTag(errno), "epoll_ctl " + Libc.ErrnoName(errno)));
        }
    }

    /// <summary>Takes the listening socket out of the set for <paramref name="milliseconds"/> (0: until a held connection is handed over).</summary>
    private void Pause(int milliseconds)
    {
        _ = _epoll.Remove(_listenFd);
        _state = State.Paused;
        _resumeAt = Environment.TickCount64 + milliseconds;
    }

    private void Listen()
    {
        var errno = _epoll.Add(_listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, ListenToken);
        if (errno != 0 && errno != Libc.EEXIST)
        {
            Pause(AcceptFailed(ErrorTag(errno), "epoll_ctl " + Libc.ErrnoName(errno)));
            return;
        }

        _state = State.Listening;
        _resumeAt = 0;
    }

    /// <summary>
    /// Unbinding: the listening socket and the stop latch leave the set for good, so every later connection wakes
    /// another waiter on the socket, if any; the connections already queued are taken, one at a time as always (one
    /// Kestrel has no room for is held until it has), then the socket is closed. Called again after each hand-over.
    /// </summary>
    private void Leave()
    {
        if (_state == State.Stopped)
        {
            return;
        }

        if (_state != State.Leaving)
        {
            _ = _epoll.Remove(_listenFd);
            _ = _epoll.Remove(Context.Stop.Fd);
            _state = State.Leaving;
            _resumeAt = 0;

            // Counted after leaving the set: connections that come later woke someone else. Those queued now may include
            // ones that woke other waiters too; whoever accepts first takes them, the other finds the queue empty.
            _leftover = QueuedConnections();
        }

        while (_state == State.Leaving && _held is null)
        {
            if (_leftover-- <= 0 || Context.Disposing.IsCancellationRequested || !TryAcceptLeaving())
            {
                StopListening();
            }
        }
    }

    /// <summary>One accept while leaving; false for none, and for an exception (logged once), which ends the leaving early.</summary>
    private bool TryAcceptLeaving()
    {
        try
        {
            return Accept();
        }
        catch (Exception e)
        {
            // Nothing expected throws here; an exception on this thread would end the process.
            _ = AcceptorFaulted(e);
            return false;
        }
    }

    /// <summary>
    /// Connections waiting in the listening socket's accept queue: <c>TCP_INFO</c>'s <c>tcpi_unacked</c> of a TCP
    /// listener. A Unix socket reports no queue length, so a few accepts are tried there: a loop can only have taken the
    /// wake-ups of the few connections that came while it slept in its last wait.
    /// </summary>
    private int QueuedConnections()
    {
        if (ListenSocket.AddressFamily == AddressFamily.Unix)
        {
            return UnixConnectionsTakenWhenLeaving;
        }

        Span<byte> info = stackalloc byte[TcpInfoUnackedOffset + sizeof(uint)];
        try
        {
            var length = ListenSocket.GetRawSocketOption(Libc.IPPROTO_TCP, Libc.TCP_INFO, info);
            return length >= info.Length ? (int)Math.Min(MemoryMarshal.Read<uint>(info[TcpInfoUnackedOffset..]), int.MaxValue) : 0;
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    /// <summary>Closes the listening socket for good (unbinding done, or the loop ending).</summary>
    private void StopListening()
    {
        if (_state == State.Stopped)
        {
            return;
        }

        _state = State.Stopped;
        _resumeAt = 0;
        _ = _epoll.Remove(_listenFd);
        _ = _epoll.Remove(Context.Stop.Fd);
        ListenSocket.Dispose();
    }

    /// <summary>Nothing expected throws here; whatever did ends that one connection, never the loop and its others.</summary>
    private void Dispatch(NativeConnection connection, uint events)
    {
        try
        {
            connection.OnEvents(events);
        }
        catch (Exception e)
        {
            Context.Metrics.AcceptError("unexpected", Tags);
            ConnectionLog.EventLoopFailed(_settings.Logger, Id, Context.EndPoint, connection.ConnectionId, e);
            connection.Abort(new ConnectionAbortedException("The event loop failed serving this connection.", e));
        }
    }

    /// <summary>
    /// Takes one connection, reads what it sent, registers it and offers it to Kestrel; false when there was none to take
    /// (another loop or process took it first, or the accept failed).
    /// </summary>
    private unsafe bool Accept()
    {
        var leaving = _state == State.Leaving;
        _wakeups++;
        var address = stackalloc byte[Libc.SocketAddressBytes];
        var length = (uint)Libc.SocketAddressBytes;
        var fd = Libc.Accept4(_listenFd, address, &length, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            switch (errno)
            {
                case Libc.EAGAIN:
                    // Another loop (or process) took it first; when leaving, the queue may simply be empty.
                    if (!leaving)
                    {
                        SpuriousWakeup();
                    }

                    return false;
                case Libc.EINTR:
                    return true;
                case Libc.ECONNABORTED or Libc.ECONNRESET or Libc.EPROTO:
                    // That connection died in the queue; the next one is unaffected, so no back-off.
                    ConnectionLostInQueue();
                    return true;
            }

            var error = ErrorTag(errno);
            if (leaving)
            {
                // No back-off to wait out: the rest stay queued for whoever else listens on the socket.
                Context.Metrics.AcceptError(error, Tags);
                return false;
            }

            // Out of descriptors or memory: the pending connection stays queued, and the socket (level-triggered) would
            // wake the loop at once; stop polling it for the back-off, serving connections meanwhile.
            Pause(AcceptFailed(error));
            return false;
        }

        AcceptSucceeded();
        NativeConnection connection;
        try
        {
            connection = new NativeConnection(fd, LocalEndPointOf(fd), RemoteEndPointOf(address, length), _settings);
        }
        catch (Exception ex)
        {
            _ = Libc.Close(fd);
            AcceptStrategyLog.HandoffFailed(Context.Logger, Id, Context.EndPoint, ex);
            return true;
        }

        var token = _connections.Add(connection);
        connection.Attach(_epoll, _connections, token);
        try
        {
            // With TCP_DEFER_ACCEPT the request is already here: read it before the first wait.
            connection.Receive();
            var registered = _epoll.Add(fd, NativeConnection.ReadEvents, token);
            if (registered != 0)
            {
                connection.Abort(new ConnectionAbortedException($"Registering the connection with its event loop failed ({Libc.ErrnoName(registered)})."));
            }

            connection.StartSending();
            Count(connection);
        }
        catch (Exception e)
        {
            // Nothing expected throws here (a throwing meter listener or logging provider could): that connection ends,
            // never offered to Kestrel, and the loop goes on.
            Context.Metrics.AcceptError("unexpected", Tags);
            ConnectionLog.EventLoopFailed(_settings.Logger, Id, Context.EndPoint, connection.ConnectionId, e);
            connection.Abort(new ConnectionAbortedException("The event loop failed accepting this connection.", e));
            return true;
        }

        if (!Context.Accepted.TryWrite(connection))
        {
            // Kestrel is behind (or at its connection limit): take no more until it has room for this one, so they wait
            // in the kernel queue where other loops and processes can still take them.
            _held = connection;
            if (!leaving)
            {
                Pause(0);
            }

            WakeWhenWritable();
        }

        return true;
    }

    private void OfferHeld()
    {
        if (Context.Disposing.IsCancellationRequested)
        {
            _held!.Abort(new ConnectionAbortedException("The listener was disposed before Kestrel took this connection."));
            _held = null;
        }
        else if (Context.Accepted.TryWrite(_held!))
        {
            _held = null;
        }
        else
        {
            WakeWhenWritable();
        }
    }

    private void WakeWhenWritable() =>
        // Completes when the queue has room, is completed, or the listener is disposed: each wakes the loop once.
        _ = Context.Accepted.WaitToWriteAsync(Context.Disposing).AsTask().ContinueWith(
            static (_, state) => ((EventFd)state!).Signal(),
            _wake,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

    private unsafe EndPoint LocalEndPointOf(int fd)
    {
        // A Unix socket's connections are all on its one path.
        if (Context.EndPoint is not IPEndPoint bound || (!bound.Address.Equals(IPAddress.Any) && !bound.Address.Equals(IPAddress.IPv6Any)))
        {
            return Context.EndPoint;
        }

        // A wildcard listener: which of the host's addresses the client reached is the kernel's to say.
        var address = stackalloc byte[Libc.SocketAddressBytes];
        var length = (uint)Libc.SocketAddressBytes;
        return Libc.GetSockName(fd, address, &length) == 0 ? RemoteEndPointOf(address, length) ?? bound : bound;
    }

    private static unsafe IPEndPoint? RemoteEndPointOf(byte* address, uint length)
    {
        var family = *(ushort*)address;
        var port = (address[2] << 8) | address[3];
        if (family == 2 && length >= 8)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(address + 4, 4)), port);
        }

        if (family == 10 && length >= 28)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(address + 8, 16), *(uint*)(address + 24)), port);
        }

        return null;
    }
}
