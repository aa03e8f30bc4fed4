using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>The errors a failed <c>recv</c> or <c>send</c> becomes, as Kestrel's socket transport sorts them.</summary>
internal static class SocketErrors
{
    /// <summary>The peer reset the connection (or it is already shut down for writing): expected, logged at Debug.</summary>
    public static bool IsReset(int errno) => errno is Libc.ECONNRESET or Libc.EPIPE;

    /// <summary>The descriptor was closed by this side's shutdown: the shutdown's reason stands, nothing to report.</summary>
    public static bool IsAbort(int errno) => errno == Libc.EBADF;

    public static SocketException ToSocketException(int errno) => new((int)(errno switch
    {
        Libc.ECONNRESET => SocketError.ConnectionReset,
        Libc.EPIPE => SocketError.Shutdown,
        Libc.ECONNABORTED => SocketError.ConnectionAborted,
        Libc.ETIMEDOUT => SocketError.TimedOut,
        Libc.EHOSTUNREACH => SocketError.HostUnreachable,
        Libc.ENOTCONN => SocketError.NotConnected,
        Libc.ENOBUFS or Libc.ENOMEM => SocketError.NoBufferSpaceAvailable,
        _ => SocketError.SocketError,
    }));

    /// <summary>What Kestrel sees for a reset: <see cref="Microsoft.AspNetCore.Connections.ConnectionResetException"/>, as from its own transport.</summary>
    public static Exception ToResetException(int errno)
    {
        var inner = ToSocketException(errno);
        return new Microsoft.AspNetCore.Connections.ConnectionResetException(inner.Message, inner);
    }
}
