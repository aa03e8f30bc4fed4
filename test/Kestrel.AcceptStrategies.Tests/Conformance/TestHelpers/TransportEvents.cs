namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>The connection events a transport logs, by the event name both kinds of transport use.</summary>
public enum TransportEvent
{
    ConnectionPause,
    ConnectionResume,
    ConnectionReadFin,
    ConnectionWriteFin,
    ConnectionWriteRst,
    ConnectionReset,
    ConnectionError,
}

/// <summary>
/// Log filters for the conformance tests, matched by category and event name (never by id alone).
/// </summary>
/// <remarks>
/// Kestrel's socket transport (used by <see cref="TestTransport.Sockets"/> and <see cref="TestTransport.Serialized"/>)
/// logs its connection events under <see cref="SocketsCategory"/> with ids 4–19; the event-loop connections of
/// <see cref="TestTransport.ReusePort"/> and <see cref="TestTransport.ThunderingHerd"/> log the same events under
/// <see cref="EventLoopCategory"/> with ids 80–86. Both give each event the same name (<see cref="TransportEvent"/>),
/// so a test asks for the event and works on every transport. Kestrel's own events (ConnectionStart, ConnectionStop,
/// ApplicationAbortedConnection, …) come from <see cref="KestrelCategory"/> or <see cref="KestrelConnectionsCategory"/>.
/// </remarks>
public static class TransportEvents
{
    public const string SocketsCategory = "Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets";

    public const string EventLoopCategory = "Kestrel.AcceptStrategies.Connections";

    public const string KestrelCategory = "Microsoft.AspNetCore.Server.Kestrel";

    public const string KestrelConnectionsCategory = "Microsoft.AspNetCore.Server.Kestrel.Connections";

    /// <summary>Kestrel's HTTP/2 connection events (Http2ConnectionClosing, Http2ConnectionClosed, …).</summary>
    public const string KestrelHttp2Category = "Microsoft.AspNetCore.Server.Kestrel.Http2";

    /// <summary>Kestrel's events about a client that broke the protocol or its limits (ResponseMinimumDataRateNotSatisfied, …).</summary>
    public const string KestrelBadRequestsCategory = "Microsoft.AspNetCore.Server.Kestrel.BadRequests";

    /// <summary>Kestrel's TLS handshake events (AuthenticationFailed, AuthenticationTimedOut, HttpsConnectionEstablished).</summary>
    public const string HttpsCategory = "Microsoft.AspNetCore.Server.Kestrel.Https.Internal.HttpsConnectionMiddleware";

    /// <summary>ASP.NET Core hosting's request entries ("Request starting …", "Request finished …"; events without names).</summary>
    public const string HostingCategory = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>Logged by the transport the test runs on, whichever it is.</summary>
    public static bool FromTransport(LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.Category is SocketsCategory or EventLoopCategory;
    }

    /// <summary>
    /// An event loop under <c>UnsafePreferInlineScheduling</c> saying that application code (or a pause of the whole
    /// process) held it past its threshold, so it hands application code to the thread pool from then on (event 88
    /// <c>EventLoopBlocked</c>, or 89 <c>EventLoopTakenOver</c> when the code had not returned yet): a statement about
    /// time on a loaded machine, not about any connection, so the checks for errors leave it out.
    /// </summary>
    public static bool LoopHeld(LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.Category == EventLoopCategory && entry.Event.Id is 88 or 89;
    }

    /// <summary>Logged by Kestrel itself (not by its transport).</summary>
    public static bool FromKestrel(LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.Category is KestrelCategory or KestrelConnectionsCategory;
    }

    /// <summary>
    /// The categories a client's disconnect must not be logged above Debug in: Kestrel's and the transport's.
    /// </summary>
    public static bool FromKestrelOrTransport(LogEntry entry) => FromKestrel(entry) || FromTransport(entry);

    /// <summary>A filter for one transport event.</summary>
    public static Func<LogEntry, bool> Transport(TransportEvent transportEvent)
    {
        var name = transportEvent.ToString();
        return entry => FromTransport(entry) && entry.Event.Name == name;
    }

    /// <summary>A filter for one of Kestrel's own events, by its event name.</summary>
    public static Func<LogEntry, bool> Kestrel(string eventName) => entry => FromKestrel(entry) && entry.Event.Name == eventName;

    /// <summary>A filter for the event named <paramref name="eventName"/> in exactly <paramref name="category"/>.</summary>
    public static Func<LogEntry, bool> Named(string category, string eventName) => entry => entry.Category == category && entry.Event.Name == eventName;
}
