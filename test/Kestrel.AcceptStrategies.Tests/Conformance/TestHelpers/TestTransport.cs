namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>What accepts and carries the connections of a conformance test's host.</summary>
public enum TestTransport
{
    /// <summary>Kestrel's own socket transport (<c>UseSockets()</c>): the reference every case must pass on.</summary>
    Sockets,

    /// <summary>AcceptStrategy.ReusePort: one SO_REUSEPORT socket per acceptor, the library's event-loop connections.</summary>
    ReusePort,

    /// <summary>AcceptStrategy.ThunderingHerd: acceptors share one socket, the library's event-loop connections.</summary>
    ThunderingHerd,

    /// <summary>AcceptStrategy.Serialized: acceptors take turns behind a mutex, Kestrel's own socket connections.</summary>
    Serialized,

    /// <summary>Kestrel's socket transport with <c>UnsafePreferInlineScheduling</c>: the reference for <see cref="ReusePortInline"/>.</summary>
    SocketsInline,

    /// <summary>ReusePort with <c>UnsafePreferInlineScheduling</c>: the event loops run the application's code themselves.</summary>
    ReusePortInline,
}
