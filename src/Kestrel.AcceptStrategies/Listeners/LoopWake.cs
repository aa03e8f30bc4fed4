using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// An <c>eventfd</c> in an event loop's epoll set that another thread makes readable to wake the loop (here: Kestrel
/// has room again for a connection the loop holds). Unlike <see cref="StopSignal"/> it is re-armed by reading it.
/// </summary>
internal sealed unsafe class LoopWake : IDisposable
{
    private int _fd;

    public LoopWake()
    {
        _fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_fd < 0)
        {
            throw new IOException($"eventfd failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
        }
    }

    public int Fd => _fd;

    /// <summary>Wakes the loop; any thread.</summary>
    public void Signal()
    {
        ulong one = 1;
        _ = Libc.Write(_fd, &one, sizeof(ulong));
    }

    /// <summary>Reads the counter back to zero (the loop's thread), so the descriptor stops being readable.</summary>
    public void Reset()
    {
        ulong value;
        _ = Libc.Read(_fd, &value, sizeof(ulong));
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }
}
