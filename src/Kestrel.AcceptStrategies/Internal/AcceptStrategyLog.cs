using System.Net;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>Every log message of the library, with stable event ids.</summary>
internal static partial class AcceptStrategyLog
{
    public const string CategoryName = "Kestrel.AcceptStrategies";

    [LoggerMessage(1, LogLevel.Information,
        "Accepting on {EndPoint} with {Strategy}: {Acceptors} acceptor(s) on {Sockets} listening socket(s), mutex {Mutex}, TCP_DEFER_ACCEPT {DeferAccept}.",
        EventName = "ListenerBound")]
    public static partial void ListenerBound(ILogger logger, EndPoint endPoint, AcceptStrategy strategy, int acceptors, int sockets, string mutex, bool deferAccept);

    [LoggerMessage(2, LogLevel.Warning,
        "Acceptor {Acceptor} on {EndPoint} failed to accept: {Error}. Backing off {BackoffMilliseconds} ms and retrying; further errors are counted, not logged, until it recovers.",
        EventName = "AcceptError")]
    public static partial void AcceptError(ILogger logger, int acceptor, EndPoint endPoint, string error, int backoffMilliseconds);

    [LoggerMessage(3, LogLevel.Information,
        "Acceptor {Acceptor} on {EndPoint} is accepting again after {Errors} failed attempt(s).",
        EventName = "AcceptRecovered")]
    public static partial void AcceptRecovered(ILogger logger, int acceptor, EndPoint endPoint, int errors);

    [LoggerMessage(4, LogLevel.Error,
        "Acceptor {Acceptor} on {EndPoint} could not hand an accepted connection to Kestrel; the connection was closed.",
        EventName = "HandoffFailed")]
    public static partial void HandoffFailed(ILogger logger, int acceptor, EndPoint endPoint, Exception exception);

    [LoggerMessage(5, LogLevel.Debug,
        "Stopped accepting on {EndPoint}.",
        EventName = "ListenerUnbound")]
    public static partial void ListenerUnbound(ILogger logger, EndPoint endPoint);
}
