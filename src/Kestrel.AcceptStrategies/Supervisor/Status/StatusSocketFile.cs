using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>
/// The status view's Unix socket file: a stale one (left by a supervisor killed with SIGKILL) is removed, anything else
/// at the path is refused rather than replaced. <c>statx(2)</c>, because .NET cannot tell a socket file from others.
/// </summary>
internal static unsafe class StatusSocketFile
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const int ENOENT = 2;

    // struct statx has the same layout on every architecture: stx_mode (u16) at byte 28 of 256.
    private const int StatxSize = 256;
    private const int StatxModeOffset = 28;
    private const int SIfMt = 0xF000;
    private const int SIfSock = 0xC000;

    /// <summary>Null if nothing is at <paramref name="path"/>; else whether it is a socket (a symbolic link is not).</summary>
    public static bool? IsSocket(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Libc.Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == ENOENT ? null : throw new IOException($"statx({path}) failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        return (*(ushort*)(buffer + StatxModeOffset) & SIfMt) == SIfSock;
    }

    /// <summary>Makes way for a new socket at <paramref name="path"/>; true if a stale socket was removed. Throws naming what is in the way.</summary>
    public static bool RemoveStale(string path)
    {
        switch (IsSocket(path))
        {
            case null:
                return false;
            case false:
                throw new IOException($"{path} exists and is not a socket; it is left as it is. Remove it or choose another path");
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // Nobody listens: what a killed process leaves behind.
            File.Delete(path);
            return true;
        }

        throw new IOException($"another process listens on {path} (a supervisor still running?); it is not taken over");
    }

    /// <summary>Removes the socket at <paramref name="path"/>, if a socket is still there.</summary>
    public static void Remove(string path)
    {
        try
        {
            if (IsSocket(path) == true)
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
            // Gone already, or its directory is: nothing to clean.
        }
    }
}
