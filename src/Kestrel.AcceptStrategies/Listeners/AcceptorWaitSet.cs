using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// An acceptor's own epoll set: its listening socket with <c>EPOLLEXCLUSIVE</c> (the kernel wakes one idle acceptor
/// per connection) and the stop signal.
/// </summary>
/// <remarks>
/// <para>
/// Never a blocking <c>accept</c>: a thread blocked on a socket shared with other acceptors or processes can only be
/// woken by shutting the socket down for everyone. The listening socket is in the acceptor's own epoll set with
/// <c>EPOLLEXCLUSIVE</c>, so the kernel wakes one idle acceptor per connection, as it does for threads blocked in
/// <c>accept(2)</c> (Starlet's workers): acceptors that share a socket without a lock (ThunderingHerd) are not all
/// woken for each connection. With <c>poll(2)</c> they were, and eight worker processes spent 2.3× the CPU per
/// request of a serialised accept (see the README's worker measurements).
/// </para>
/// <para>
/// The kernel queues an exclusive waiter at the tail of the socket's wait queue when it is added and wakes the first
/// idle one from the head, so the acceptor registered first took nearly every connection it was idle for. A
/// ThunderingHerd set (the only strategy whose acceptors share a wait queue without a lock) therefore takes the
/// socket out and adds it back, to the tail, every <see cref="RearmEvery"/> wake-ups, as nginx does every 16
/// accepts: acceptors take turns, and the two system calls are amortised over many connections.
/// </para>
/// </remarks>
internal sealed unsafe class AcceptorWaitSet : IDisposable
{
    /// <summary>Wake-ups between re-registrations (ThunderingHerd); measured against 1, 4, 64, 256 and 1024 in the README.</summary>
    public const int RearmEvery = 16;

    /// <summary>The epoll data of the listening socket, the stop signal and the shutdown signal; connections carry tokens above these.</summary>
    public const ulong ListenToken = 0, StopToken = 1, ShutdownToken = 2, WakeToken = 3;

    private readonly int _listenFd;
    private readonly int _rearmEvery;
    private int _epoll;
    private int _wakeups;

    /// <summary>The epoll set's descriptor, for the connections an event loop registers in it.</summary>
    public int EpollFd => _epoll;

    private readonly LoopWake? _wake;

    /// <summary>
    /// An acceptor's set; with <paramref name="shutdownFd"/> (an event loop's) also the shutdown signal and a wake-up
    /// other threads can raise with <see cref="Wake"/>.
    /// </summary>
    public AcceptorWaitSet(int listenFd, int stopFd, AcceptStrategy strategy, int shutdownFd = -1)
    {
        _wake = shutdownFd >= 0 ? new LoopWake() : null;
        _listenFd = listenFd;
        _rearmEvery = strategy == AcceptStrategy.ThunderingHerd ? RearmEvery : 0;
        _epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}.");
        }

        if (!Add(listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, ListenToken) || !Add(stopFd, Libc.EPOLLIN, StopToken)
            || (shutdownFd >= 0 && !Add(shutdownFd, Libc.EPOLLIN, ShutdownToken))
            || (_wake is not null && !Add(_wake.Fd, Libc.EPOLLIN, WakeToken)))
        {
            var errno = Marshal.GetLastPInvokeError();
            Dispose();
            throw new IOException(
                $"Adding the listening socket to an epoll set with EPOLLEXCLUSIVE failed ({Libc.ErrnoName(errno)}); Linux 4.5 or later is needed.");
        }
    }

    /// <summary>Blocks until either descriptor is readable (0) or epoll (or re-registering the socket) fails (its errno).</summary>
    public int Wait()
    {
        if (_rearmEvery > 0 && _wakeups >= _rearmEvery)
        {
            // Not waiting while the socket is out of the set, so no connection is missed: one that arrives meanwhile
            // wakes another acceptor, or is found ready when the socket is added back.
            var failed = Rearm();
            if (failed != 0)
            {
                return failed;
            }

            _wakeups = 0;
        }

        // Room for both descriptors' events on any ABI; which one fired does not matter: the caller checks the stop.
        var events = stackalloc byte[2 * Libc.EpollEventBytes];
        while (true)
        {
            if (Libc.EpollWait(_epoll, events, 2, -1) >= 0)
            {
                _wakeups++;
                return 0;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
            {
                return errno;
            }
        }
    }

    /// <summary>Wakes the loop waiting in <see cref="WaitMany"/> with a <see cref="WakeToken"/> event; any thread.</summary>
    public void Wake() => _wake!.Signal();

    /// <summary>Consumes the wake-up (the loop's thread), so the next wait sleeps again.</summary>
    public void ResetWake() => _wake!.Reset();

    public void Dispose()
    {
        _wake?.Dispose();
        var epoll = Interlocked.Exchange(ref _epoll, -1);
        if (epoll >= 0)
        {
            _ = Libc.Close(epoll);
        }
    }

    /// <summary>Moves this acceptor to the tail of the socket's wait queue; 0, or the errno (retried on the next wait).</summary>
    private int Rearm()
    {
        // ENOENT: a previous attempt took the socket out but could not add it back.
        if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, _listenFd, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.ENOENT)
            {
                return errno;
            }
        }

        return Add(_listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, ListenToken) ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>
    /// An event loop's wait: up to <paramref name="max"/> events into <paramref name="events"/>, their count, or the
    /// negated errno. Re-registers the listening socket first when its turn has come (see <see cref="Wait"/>).
    /// </summary>
    public int WaitMany(byte* events, int max, int timeoutMilliseconds)
    {
        if (_rearmEvery > 0 && _wakeups >= _rearmEvery && _listening)
        {
            var failed = Rearm();
            if (failed != 0)
            {
                return -failed;
            }

            _wakeups = 0;
        }

        while (true)
        {
            var n = Libc.EpollWait(_epoll, events, max, timeoutMilliseconds);
            if (n >= 0)
            {
                return n;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
            {
                return -errno;
            }
        }
    }

    /// <summary>Counts a wake-up that brought a connection, for the ThunderingHerd rotation.</summary>
    public void CountWakeup() => _wakeups++;

    private bool _listening = true;

    /// <summary>Takes the listening socket (and the stop signal, once set) out of the set; connections stay. 0 or the errno.</summary>
    public int StopListening(int stopFd)
    {
        _listening = false;
        var listen = Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, _listenFd, null) == 0 ? 0 : Marshal.GetLastPInvokeError();
        if (stopFd >= 0)
        {
            _ = Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, stopFd, null);
        }

        return listen == Libc.ENOENT ? 0 : listen;
    }

    /// <summary>Puts the listening socket back after <see cref="StopListening"/> (an accept back-off); 0 or the errno.</summary>
    public int ResumeListening()
    {
        _listening = true;
        return Add(_listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, ListenToken) ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>The data and events of event <paramref name="index"/> of a <see cref="WaitMany"/> result.</summary>
    public static ulong EventData(byte* events, int index, out uint flags)
    {
        var ev = events + (index * SocketCalls.EpollEventStride);
        flags = *(uint*)ev;
        return *(ulong*)(ev + SocketCalls.EpollDataOffset);
    }

    private bool Add(int fd, uint events, ulong data)
    {
        var ev = stackalloc byte[Libc.EpollEventBytes];
        new Span<byte>(ev, Libc.EpollEventBytes).Clear();
        *(uint*)ev = events;
        *(ulong*)(ev + SocketCalls.EpollDataOffset) = data;
        return Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, fd, ev) == 0;
    }
}
