using System.Globalization;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>Finds a socket's inode in <c>/proc/net</c> and whether a process holds a descriptor on it.</summary>
internal static class SocketInodes
{
    /// <summary>The inode of the IPv4 socket listening on 127.x.x.x:<paramref name="port"/>.</summary>
    public static long ListeningTcp(int port)
    {
        var hexPort = port.ToString("X4", CultureInfo.InvariantCulture);
        foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f[1].EndsWith(":" + hexPort, StringComparison.Ordinal) && f[3] == "0A")
            {
                return long.Parse(f[9], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"No socket listens on port {port} in /proc/net/tcp.");
    }

    /// <summary>The inode of the Unix socket listening on <paramref name="path"/>.</summary>
    public static long Unix(string path)
    {
        foreach (var line in File.ReadLines("/proc/net/unix").Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // Flags 00010000 (__SO_ACCEPTCON): the listening socket, not a connection accepted from it, which shows the path too.
            if (f.Length >= 8 && f[7] == path && f[3] == "00010000")
            {
                return long.Parse(f[6], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"No Unix socket listens on {path} in /proc/net/unix.");
    }

    /// <summary>Whether process <paramref name="pid"/> has a descriptor on socket <paramref name="inode"/>.</summary>
    public static bool Holds(int pid, long inode)
    {
        var wanted = $"socket:[{inode.ToString(CultureInfo.InvariantCulture)}]";
        foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == wanted)
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // Closed while listed.
            }
        }

        return false;
    }
}
