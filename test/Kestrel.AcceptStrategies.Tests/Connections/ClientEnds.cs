using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
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

internal static partial class ClientEnds
{
    private const int IpProtoTcp = 6;
    private const int TcpCork = 3;
    private const int SchedFifo = 1;

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

    /// <summary>
    /// Runs <paramref name="clientCalls"/> (a few short socket calls) on a thread of its own under SCHED_FIFO, so the
    /// server's thread that the first call wakes cannot preempt it before the last call: back-to-back calls then arrive
    /// back to back, as from a client on another machine. Without the privilege (not root) the calls still run, at the
    /// scheduler's mercy. Returns whether the thread ran under SCHED_FIFO.
    /// </summary>
    public static bool RunBackToBack(Action clientCalls)
    {
        var fifo = false;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                var parameter = 1;
                fifo = SchedSetScheduler(0, SchedFifo, ref parameter) == 0;
                clientCalls();
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        {
            IsBackground = true,
            Name = "back-to-back client",
        };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("The client's calls did not return within 30 s");
        }

        return failure is null ? fifo : throw new InvalidOperationException("The client's calls failed", failure);
    }

    /// <summary><c>sched_setscheduler(2)</c>: pid 0 is the calling thread; the parameter is <c>struct sched_param</c> (one int).</summary>
    [LibraryImport("libc", EntryPoint = "sched_setscheduler", SetLastError = true)]
    private static partial int SchedSetScheduler(int pid, int policy, ref int parameter);
}
