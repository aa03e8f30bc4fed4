namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>The accept mutex (Serialized): taking it, and telling an unbinding listener when stopping cannot interrupt the wait.</summary>
internal sealed partial class Acceptor
{
    /// <summary>True while this acceptor waits for a mutex that stopping cannot interrupt (a blocking <c>flock</c>).</summary>
    public bool InUncancellableWait => _inUncancellableWait;

    private volatile bool _inUncancellableWait;

    /// <summary>Takes the accept mutex; false with a null error when stopping.</summary>
    private bool TryEnterMutex(out string? error)
    {
        error = null;
        if (mutex!.IsCancellable)
        {
            return mutex.TryEnter(stop.Token);
        }

        // Flagged before stopping is checked inside TryEnter, so an unbinding listener either sees the flag or sees
        // this acceptor return.
        _inUncancellableWait = true;
        try
        {
            return mutex.TryEnter(stop.Token);
        }
        catch (IOException e)
        {
            error = e.Message;
            return false;
        }
        finally
        {
            _inUncancellableWait = false;
        }
    }
}
