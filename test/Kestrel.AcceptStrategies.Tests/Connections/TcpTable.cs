using System.Globalization;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>One line of /proc/net/tcp or /proc/net/tcp6: a socket as the kernel lists it, with or without a process.</summary>
internal sealed record TcpSocket(int LocalPort, int RemotePort, int State, long SendQueue, long ReceiveQueue, long Inode)
{
    /// <summary>No process holds it any more (inode 0): the kernel finishes the connection alone.</summary>
    public bool IsOrphan => Inode == 0;

    public const int Listen = 0x0A;

    public string StateName => State switch
    {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        _ => State.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// The kernel's TCP sockets. An orphan (closed by its process, still draining or retransmitting its FIN) has no
/// descriptor any more, but it is still listed here with its local port, so this is where a test sees it.
/// </summary>
internal static class TcpTable
{
    public static IReadOnlyList<TcpSocket> All() => [.. Read("/proc/net/tcp"), .. Read("/proc/net/tcp6")];

    /// <summary>The server's sockets of <paramref name="port"/> other than the listening ones: its side of every connection.</summary>
    public static IReadOnlyList<TcpSocket> ServerSide(int port) => [.. All().Where(s => s.LocalPort == port && s.State != TcpSocket.Listen)];

    /// <summary>One line per state: "FIN_WAIT1 x20 (send queue 1234 bytes)".</summary>
    public static string Describe(IReadOnlyList<TcpSocket> sockets) => sockets.Count == 0
        ? "none"
        : string.Join(", ", sockets.GroupBy(s => s.StateName).Select(g =>
            $"{g.Key} x{g.Count()} ({g.Count(s => s.IsOrphan)} orphaned, send queue {g.Sum(s => s.SendQueue)} bytes)"));

    /// <summary>The "TCP:" line of /proc/net/sockstat: inuse, orphan, tw, alloc and mem (pages) for the whole machine.</summary>
    public static string SockStat() =>
        File.ReadLines("/proc/net/sockstat").FirstOrDefault(l => l.StartsWith("TCP:", StringComparison.Ordinal))?.Trim() ?? "";

    private static IEnumerable<TcpSocket> Read(string path)
    {
        if (!File.Exists(path))
        {
            yield break;
        }

        foreach (var line in File.ReadLines(path).Skip(1))
        {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...;
            // addresses are HEX_IP:HEX_PORT.
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 10)
            {
                continue;
            }

            var queues = fields[4].Split(':');
            yield return new TcpSocket(
                Port(fields[1]),
                Port(fields[2]),
                int.Parse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                long.Parse(queues[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                long.Parse(queues[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                long.Parse(fields[9], CultureInfo.InvariantCulture));
        }
    }

    private static int Port(string address) =>
        int.Parse(address.AsSpan(address.LastIndexOf(':') + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
