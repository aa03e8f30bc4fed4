using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// A one-shot stop signal that acceptors can wait on together with their listening socket: an <see cref="EventFd"/>
/// latch in each acceptor's epoll set (and <c>poll(2)</c> for back-offs) plus a token for everything else (the accept
/// mutex, the hand-off channel).
/// </summary>
/// <remarks>
/// Closing a listening socket does not wake a thread blocked on it, and <c>shutdown(2)</c> would stop the socket for
/// every process sharing it; a readable eventfd wakes every acceptor of this process and no one else.
/// </remarks>
internal sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly EventFd _latch = new();

    public int Fd => _latch.Fd;

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

        // Never read back, so the eventfd stays readable for every epoll_wait and poll after this.
        _latch.Signal();
    }

    /// <summary>Waits up to <paramref name="milliseconds"/> for the signal; true when it is set.</summary>
    public bool Wait(int milliseconds)
    {
        _ = _latch.Wait(milliseconds);
        return IsSet;
    }

    public void Dispose()
    {
        _latch.Dispose();
        _cts.Dispose();
    }
}
