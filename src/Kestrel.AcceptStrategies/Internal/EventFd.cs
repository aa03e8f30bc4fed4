using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// A non-blocking, close-on-exec <c>eventfd(2)</c>: a descriptor another thread makes readable to wake one waiting in
/// <c>poll(2)</c> or <c>epoll_wait(2)</c>. A latch stays readable once signalled; a wake-up is read back to zero.
/// </summary>
internal sealed unsafe class EventFd : IDisposable
{
    private int _fd;

    public EventFd()
    {
        _fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_fd < 0)
        {
            throw new IOException($"eventfd failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
        }
    }

    public int Fd => _fd;

    /// <summary>Makes the descriptor readable; any thread.</summary>
    public void Signal()
    {
        ulong one = 1;
        _ = Libc.Write(_fd, &one, sizeof(ulong));
    }

    /// <summary>Reads the counter back to zero, so the descriptor stops being readable.</summary>
    public void Reset()
    {
        ulong value;
        _ = Libc.Read(_fd, &value, sizeof(ulong));
    }

    /// <summary>Waits up to <paramref name="milliseconds"/> (-1: forever) for it to be readable; true when it is.</summary>
    public bool Wait(int milliseconds)
    {
        var pfd = new PollFd { Fd = _fd, Events = Libc.POLLIN };
        return Libc.Poll(&pfd, 1, milliseconds) > 0 && (pfd.Revents & Libc.POLLIN) != 0;
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
