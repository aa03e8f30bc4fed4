namespace Kestrel.AcceptStrategies;

/// <summary>
/// How the acceptors of a listening endpoint take new connections from the kernel.
/// </summary>
public enum AcceptStrategy
{
    /// <summary>
    /// All acceptors share one listening socket and take turns through an accept mutex, so only one of them waits for
    /// a connection (<c>epoll_wait(2)</c>, then <c>accept(2)</c>) at a time (Apache's <c>AcceptMutex</c>, Starman's
    /// <c>flock(2)</c>). No wasted wake-ups, but every connection passes through the lock.
    /// </summary>
    Serialized,

    /// <summary>
    /// All acceptors wait on one shared listening socket with no lock (Starlet); the kernel wakes one idle acceptor per
    /// connection (<c>EPOLLEXCLUSIVE</c>, Linux 4.5+). No lock hand-off; now and then two wake for one connection and
    /// the loser counts a spurious wake-up.
    /// </summary>
    ThunderingHerd,

    /// <summary>
    /// Each acceptor owns its own listening socket bound to the same address with <c>SO_REUSEPORT</c>; the kernel
    /// hashes each new connection to one socket. No shared queue and no wake-up contention. Linux only.
    /// </summary>
    ReusePort,
}
