using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// An acceptor's own epoll set: its listening socket with <c>EPOLLEXCLUSIVE</c> (the kernel wakes one idle acceptor
/// per connection) and the stop signal.
/// </summary>
/// <remarks>
/// Never a blocking <c>accept</c>: a thread blocked on a socket shared with other acceptors or processes can only be
/// woken by shutting the socket down for everyone. The listening socket is in the acceptor's own epoll set with
/// <c>EPOLLEXCLUSIVE</c>, so the kernel wakes one idle acceptor per connection, as it does for threads blocked in
/// <c>accept(2)</c> (Starlet's workers): acceptors that share a socket without a lock (ThunderingHerd) are not all
/// woken for each connection. With <c>poll(2)</c> they were, and eight worker processes spent 2.3× the CPU per
/// request of a serialised accept (see the README's worker measurements).
/// </remarks>
internal sealed unsafe class AcceptorWaitSet : IDisposable
{
    private int _epoll;

    public AcceptorWaitSet(int listenFd, int stopFd)
    {
        _epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}.");
        }

        if (!Add(listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE) || !Add(stopFd, Libc.EPOLLIN))
        {
            var errno = Marshal.GetLastPInvokeError();
            Dispose();
            throw new IOException(
                $"Adding the listening socket to an epoll set with EPOLLEXCLUSIVE failed ({Libc.ErrnoName(errno)}); Linux 4.5 or later is needed.");
        }
    }

    /// <summary>Blocks until either descriptor is readable (0) or epoll fails (its errno).</summary>
    public int Wait()
    {
        // Room for both descriptors' events on any ABI; which one fired does not matter: the caller checks the stop.
        var events = stackalloc byte[2 * Libc.EpollEventBytes];
        while (true)
        {
            if (Libc.EpollWait(_epoll, events, 2, -1) >= 0)
            {
                return 0;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
            {
                return errno;
            }
        }
    }

    public void Dispose()
    {
        var epoll = Interlocked.Exchange(ref _epoll, -1);
        if (epoll >= 0)
        {
            _ = Libc.Close(epoll);
        }
    }

    private bool Add(int fd, uint events)
    {
        var ev = stackalloc byte[Libc.EpollEventBytes];
        new Span<byte>(ev, Libc.EpollEventBytes).Clear();
        *(uint*)ev = events;
        return Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, fd, ev) == 0;
    }
}
