namespace Kestrel.AcceptStrategies;

/// <summary>
/// How the acceptors of a listening endpoint take new connections from the kernel.
/// </summary>
public enum AcceptStrategy
{
    /// <summary>
    /// All acceptors share one listening socket and take turns through an accept mutex, so only one of them waits in
    /// <c>accept(2)</c> at a time (Apache's <c>AcceptMutex</c>, Starman's <c>flock(2)</c>). No wasted wake-ups, but
    /// every connection passes through the lock.
    /// </summary>
    Serialized,

    /// <summary>
    /// All acceptors wait on one shared listening socket with no lock; the kernel wakes them and one wins each
    /// connection (Starlet). No lock hand-off, at the price of spurious wake-ups when many acceptors are idle.
    /// </summary>
    ThunderingHerd,

    /// <summary>
    /// Each acceptor owns its own listening socket bound to the same address with <c>SO_REUSEPORT</c>; the kernel
    /// hashes each new connection to one socket. No shared queue and no wake-up contention. Linux only.
    /// </summary>
    ReusePort,
}
