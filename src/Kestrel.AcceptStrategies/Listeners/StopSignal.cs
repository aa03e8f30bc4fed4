using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// A one-shot stop signal that acceptors can wait on together with their listening socket: an <c>eventfd</c> in each
/// acceptor's epoll set (and <c>poll(2)</c> for back-offs) plus a token for everything else (the accept mutex, the
/// hand-off channel).
/// </summary>
/// <remarks>
/// Closing a listening socket does not wake a thread blocked on it, and <c>shutdown(2)</c> would stop the socket for
/// every process sharing it; a readable eventfd wakes every acceptor of this process and no one else.
/// </remarks>
internal sealed unsafe class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private int _fd;

    public StopSignal()
    {
        _fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_fd < 0)
        {
            throw new IOException($"eventfd failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
        }
    }

    public int Fd => _fd;

    public bool IsSet => _cts.IsCancellationRequested;

    public CancellationToken Token => _cts.Token;

    public void Set()
    {
        if (_cts.IsCancellationRequested)
        {
            return;
        }

        // Token first: an acceptor woken by the eventfd must already see IsSet, or it takes the wake-up for an error.
        _cts.Cancel();

        // The counter is never read back, so the eventfd stays readable for every epoll_wait and poll after this.
        ulong one = 1;
        _ = Libc.Write(_fd, &one, sizeof(ulong));
    }

    /// <summary>Waits up to <paramref name="milliseconds"/> for the signal; true when it is set.</summary>
    public bool Wait(int milliseconds)
    {
        var pfd = new PollFd { Fd = _fd, Events = Libc.POLLIN };
        _ = Libc.Poll(&pfd, 1, milliseconds);
        return IsSet;
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }

        _cts.Dispose();
    }
}
