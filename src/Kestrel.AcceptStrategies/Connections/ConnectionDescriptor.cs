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
    /// close sends RST and drops unsent data at once), otherwise it is shut down both ways (FIN after what is queued).
    /// </summary>
    public void Close(bool abortive)
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
