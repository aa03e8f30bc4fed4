using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>One readiness report of <c>epoll_wait(2)</c>: what happened and the data its registration carries.</summary>
internal readonly record struct EpollEvent(uint Events, ulong Data);

/// <summary>
/// An <c>epoll(7)</c> set: registrations carry a 64-bit datum, and waits fill an <see cref="EpollEventBuffer"/> read
/// as <see cref="EpollEvent"/>s, so no caller deals with <c>struct epoll_event</c>'s layout (packed on x86-64).
/// </summary>
internal sealed unsafe class Epoll : IDisposable
{
    private int _fd;

    public Epoll()
    {
        _fd = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (_fd < 0)
        {
            throw new IOException($"epoll_create1 failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}.");
        }
    }

    /// <summary>Adds <paramref name="fd"/>; 0, or the errno.</summary>
    public int Add(int fd, uint events, ulong data) => Control(Libc.EPOLL_CTL_ADD, fd, events, data);

    /// <summary>Changes the events of a registered <paramref name="fd"/>; 0, or the errno.</summary>
    public int Modify(int fd, uint events, ulong data) => Control(Libc.EPOLL_CTL_MOD, fd, events, data);

    /// <summary>Removes <paramref name="fd"/>; 0 (also when it was not registered), or the errno.</summary>
    public int Remove(int fd)
    {
        var errno = Libc.EpollCtl(_fd, Libc.EPOLL_CTL_DEL, fd, null) == 0 ? 0 : Marshal.GetLastPInvokeError();
        return errno == Libc.ENOENT ? 0 : errno;
    }

    /// <summary>Waits up to <paramref name="timeoutMilliseconds"/> (-1: forever); the number of events, or the negated errno.</summary>
    public int Wait(EpollEventBuffer events, int timeoutMilliseconds)
    {
        while (true)
        {
            var n = Libc.EpollWait(_fd, events.Pointer, events.Capacity, timeoutMilliseconds);
            if (n >= 0)
            {
                return n;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
            {
                return -errno;
            }
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }

    private int Control(int operation, int fd, uint events, ulong data)
    {
        var ev = stackalloc byte[EpollEventBuffer.MaxStride];
        EpollEventBuffer.Write(ev, new EpollEvent(events, data));
        return Libc.EpollCtl(_fd, operation, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }
}

/// <summary>Native memory for the events of one <see cref="Epoll.Wait"/>; read on the waiting thread.</summary>
internal sealed unsafe class EpollEventBuffer : IDisposable
{
    /// <summary><c>struct epoll_event</c> is packed (12 bytes, data at 4) on x86 and x86-64, 16 bytes with data at 8 elsewhere.</summary>
    private static readonly int Stride = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86 ? 12 : 16;

    private static readonly int DataOffset = Stride == 12 ? 4 : 8;

    /// <summary>Bytes of one event on any ABI.</summary>
    public const int MaxStride = 16;

    private byte* _events;

    public EpollEventBuffer(int capacity)
    {
        Capacity = capacity;
        _events = (byte*)NativeMemory.AllocZeroed((nuint)(capacity * Stride));
    }

    public int Capacity { get; }

    internal byte* Pointer => _events;

    public EpollEvent this[int index]
    {
        get
        {
            var ev = _events + (index * Stride);
            return new EpollEvent(*(uint*)ev, *(ulong*)(ev + DataOffset));
        }
    }

    internal static void Write(byte* destination, EpollEvent value)
    {
        new Span<byte>(destination, Stride).Clear();
        *(uint*)destination = value.Events;
        *(ulong*)(destination + DataOffset) = value.Data;
    }

    public void Dispose()
    {
        var events = _events;
        _events = null;
        NativeMemory.Free(events);
    }
}
