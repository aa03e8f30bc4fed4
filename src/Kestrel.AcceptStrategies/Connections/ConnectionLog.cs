using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// The event-loop connections' transport events, with the names of Kestrel's socket transport events (<c>SocketsLog</c>)
/// so a filter or a dashboard written for one reads the other; ids are this library's own. Category
/// <see cref="CategoryName"/>: enable Debug there to see why a connection ended.
/// </summary>
internal static partial class ConnectionLog
{
    public const string CategoryName = Internal.AcceptStrategyLog.CategoryName + ".Connections";

    [LoggerMessage(80, LogLevel.Debug, @"Connection id ""{ConnectionId}"" paused.", EventName = "ConnectionPause", SkipEnabledCheck = true)]
    private static partial void ConnectionPauseCore(ILogger logger, string connectionId);

    [LoggerMessage(81, LogLevel.Debug, @"Connection id ""{ConnectionId}"" resumed.", EventName = "ConnectionResume", SkipEnabledCheck = true)]
    private static partial void ConnectionResumeCore(ILogger logger, string connectionId);

    [LoggerMessage(82, LogLevel.Debug, @"Connection id ""{ConnectionId}"" received FIN.", EventName = "ConnectionReadFin", SkipEnabledCheck = true)]
    private static partial void ConnectionReadFinCore(ILogger logger, string connectionId);

    [LoggerMessage(83, LogLevel.Debug, @"Connection id ""{ConnectionId}"" sending FIN because: ""{Reason}""", EventName = "ConnectionWriteFin", SkipEnabledCheck = true)]
    private static partial void ConnectionWriteFinCore(ILogger logger, string connectionId, string reason);

    [LoggerMessage(84, LogLevel.Debug, @"Connection id ""{ConnectionId}"" sending RST because: ""{Reason}""", EventName = "ConnectionWriteRst", SkipEnabledCheck = true)]
    private static partial void ConnectionWriteRstCore(ILogger logger, string connectionId, string reason);

    [LoggerMessage(85, LogLevel.Debug, @"Connection id ""{ConnectionId}"" reset.", EventName = "ConnectionReset", SkipEnabledCheck = true)]
    private static partial void ConnectionResetCore(ILogger logger, string connectionId);

    [LoggerMessage(86, LogLevel.Debug, @"Connection id ""{ConnectionId}"" communication error.", EventName = "ConnectionError", SkipEnabledCheck = true)]
    private static partial void ConnectionErrorCore(ILogger logger, string connectionId, Exception exception);

    /// <summary>Not a transport event of Kestrel's: the loop failed serving one connection, which it aborted; the loop and its other connections go on.</summary>
    [LoggerMessage(87, LogLevel.Error,
        @"The event loop of acceptor {Acceptor} on {EndPoint} failed serving connection id ""{ConnectionId}""; that connection was aborted, the loop goes on.",
        EventName = "EventLoopFailed")]
    public static partial void EventLoopFailed(ILogger logger, int acceptor, System.Net.EndPoint endPoint, string connectionId, Exception exception);

    /// <summary>
    /// Not a transport event of Kestrel's: under <c>UnsafePreferInlineScheduling</c> application code (or a pause of the
    /// process while it ran) held an event loop, and every connection of that loop waited; that loop hands application
    /// code to the thread pool from now on.
    /// </summary>
    [LoggerMessage(88, LogLevel.Warning,
        "Application code run on the event loop of acceptor {Acceptor} on {EndPoint} (UnsafePreferInlineScheduling) held it for {Milliseconds} ms, or the process was paused meanwhile; " +
        "every other connection of that loop waited. From now on that loop hands application code to the thread pool.",
        EventName = "EventLoopBlocked")]
    public static partial void EventLoopBlocked(ILogger logger, int acceptor, System.Net.EndPoint endPoint, long milliseconds);

    [LoggerMessage(89, LogLevel.Warning,
        "Application code run on the event loop of acceptor {Acceptor} on {EndPoint} (UnsafePreferInlineScheduling) has held it for {Milliseconds} ms and not returned " +
        "(it waits synchronously for that loop, or it is slow, or the process was paused); a new thread carries the loop on, and from now on that loop hands application code to the thread pool.",
        EventName = "EventLoopTakenOver")]
    public static partial void EventLoopTakenOver(ILogger logger, int acceptor, System.Net.EndPoint endPoint, long milliseconds);

    [LoggerMessage(90, LogLevel.Error,
        "No thread could be started to take over the event loop of acceptor {Acceptor} on {EndPoint} (UnsafePreferInlineScheduling), held by application code; " +
        "the loop waits until that code returns, and from then on hands application code to the thread pool.",
        EventName = "EventLoopTakeOverFailed")]
    public static partial void EventLoopTakeOverFailed(ILogger logger, int acceptor, System.Net.EndPoint endPoint, Exception exception);

    /// <summary>Kestrel's transport logs this as "Unexpected exception in SocketConnection.CancelConnectionClosedToken".</summary>
    [LoggerMessage(91, LogLevel.Error,
        @"A callback registered on ConnectionClosed of connection id ""{ConnectionId}"" threw; the connection had ended, the process goes on.",
        EventName = "ConnectionClosedCallbackFailed")]
    public static partial void ConnectionClosedCallbackFailed(ILogger logger, string connectionId, Exception exception);

    // The connection id is made on first use: these check the level first so a connection nobody logs about never pays for one.
    public static void ConnectionPause(ILogger logger, NativeConnection connection)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionPauseCore(logger, connection.ConnectionId);
        }
    }

    public static void ConnectionResume(ILogger logger, NativeConnection connection)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionResumeCore(logger, connection.ConnectionId);
        }
    }

    public static void ConnectionReadFin(ILogger logger, NativeConnection connection)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionReadFinCore(logger, connection.ConnectionId);
        }
    }

    public static void ConnectionWriteFin(ILogger logger, NativeConnection connection, string reason)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionWriteFinCore(logger, connection.ConnectionId, reason);
        }
    }

    public static void ConnectionWriteRst(ILogger logger, NativeConnection connection, string reason)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionWriteRstCore(logger, connection.ConnectionId, reason);
        }
    }

    public static void ConnectionReset(ILogger logger, NativeConnection connection)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionResetCore(logger, connection.ConnectionId);
        }
    }

    public static void ConnectionError(ILogger logger, NativeConnection connection, Exception exception)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ConnectionErrorCore(logger, connection.ConnectionId, exception);
        }
    }
}
