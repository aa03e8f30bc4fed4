using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// An accepted socket's descriptor, closed once nothing is using it: a thread that ends the connection while the
/// event loop reads from it never closes the number under that read, where a newly accepted socket could reuse it.
/// </summary>
internal sealed unsafe class ConnectionDescriptor : SafeHandle
{
    public ConnectionDescriptor(int fd)
        : base(invalidHandleValue: -1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle == -1;

    public int Fd => (int)handle;

    /// <summary>
    /// Ends the connection and closes the descriptor once unused: <paramref name="abortive"/> resets it (linger 0, so the
    /// close sends RST and drops unsent data at once), otherwise it is shut down both ways (FIN after what is queued),
    /// after leaving <paramref name="epoll"/>.
    /// </summary>
    public void Close(bool abortive, Epoll? epoll)
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            if (abortive)
            {
                var linger = new Libc.Linger { OnOff = 1, Seconds = 0 };
                _ = Libc.SetSockOpt(Fd, Libc.SOL_SOCKET, Libc.SO_LINGER, &linger, (uint)sizeof(Libc.Linger));
            }
            else
            {
                // Shutting down raises EPOLLHUP, which would wake the event loop for a connection that is over; a close
                // (the abortive path) leaves the set without an event.
                _ = epoll?.Remove(Fd);

                // Both ways, as Kestrel does: a duplicate of the descriptor elsewhere cannot keep the connection open.
                _ = Libc.Shutdown(Fd, Libc.SHUT_RDWR);
            }
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }

        Dispose();
    }

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
