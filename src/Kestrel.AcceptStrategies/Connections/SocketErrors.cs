using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>The exceptions Kestrel expects from a transport for a failed read or write, as its socket transport raises them.</summary>
internal static class SocketErrors
{
    public static Exception ToException(int errno)
    {
        var socketError = errno switch
        {
            SocketCalls.ECONNRESET => SocketError.ConnectionReset,
            SocketCalls.EPIPE => SocketError.Shutdown,
            SocketCalls.ECONNABORTED => SocketError.ConnectionAborted,
            SocketCalls.ETIMEDOUT => SocketError.TimedOut,
            SocketCalls.EHOSTUNREACH => SocketError.HostUnreachable,
            _ => SocketError.SocketError,
        };
        var inner = new SocketException((int)socketError);
        return socketError is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted
            ? new ConnectionResetException(inner.Message, inner)
            : new IOException($"{inner.Message} (errno {errno})", inner);
    }
}
