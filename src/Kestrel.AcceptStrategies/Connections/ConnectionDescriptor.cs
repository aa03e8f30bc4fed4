using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// An accepted socket's descriptor, closed once nothing is using it: a thread that disposes the connection while the
/// event loop reads from it never closes the number under that read, where a newly accepted socket could reuse it.
/// </summary>
internal sealed class ConnectionDescriptor : SafeHandle
{
    public ConnectionDescriptor(int fd)
        : base(invalidHandleValue: -1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle == -1;

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Internal.Libc.Close((int)handle) == 0;
}
