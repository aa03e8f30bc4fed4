using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>How a test client ends its side of a connection.</summary>
public enum ClientEnd
{
    /// <summary><c>shutdown(SHUT_WR)</c>: a FIN, the socket still open for reading.</summary>
    HalfClose,

    /// <summary><c>SO_LINGER</c> 0 and <c>close</c>: a RST.</summary>
    Reset,
}

internal static class ClientEnds
{
    private const int IpProtoTcp = 6;
    private const int TcpCork = 3;

    /// <summary>Sends <paramref name="text"/> with one blocking call.</summary>
    public static void SendNow(this Socket socket, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        for (var sent = 0; sent < bytes.Length;)
        {
            sent += socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
        }
    }

    /// <summary>
    /// Sends <paramref name="text"/> and ends the client's side as <paramref name="end"/> says, at once. A half-close
    /// sends the text and the FIN in one segment (corked until the FIN, as a client whose last write and close are
    /// coalesced does), so the server finds both queued whenever it reads. A RST cannot carry data, so a reset follows
    /// the data as closely as two calls can.
    /// </summary>
    public static void SendAndEnd(this Socket socket, string text, ClientEnd end)
    {
        if (end == ClientEnd.HalfClose)
        {
            socket.SetRawSocketOption(IpProtoTcp, TcpCork, BitConverter.GetBytes(1));
            socket.SendNow(text);
            socket.Shutdown(SocketShutdown.Send);
        }
        else
        {
            socket.SendNow(text);
            Reset(socket);
        }
    }

    /// <summary>An abortive close: the kernel sends RST instead of FIN.</summary>
    public static void Reset(this Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    public static int LocalPort(this Socket socket) => ((IPEndPoint)socket.LocalEndPoint!).Port;
}
