namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// The lock that <see cref="AcceptStrategy.Serialized"/> acceptors hold around <c>epoll_wait(2)</c> + <c>accept(2)</c>.
/// Each acceptor asks an <see cref="IAcceptMutexFactory"/> for its mutex: the in-process factory hands every acceptor
/// the same semaphore, the <c>flock(2)</c> one opens the lock file per acceptor, because a flock belongs to an open
/// file description and acceptors sharing one would all hold it at once.
/// </summary>
internal interface IAcceptMutex : IDisposable
{
    /// <summary>Blocks until the mutex is held; false (without holding it) once <paramref name="stopping"/> fires.</summary>
    bool TryEnter(CancellationToken stopping);

    /// <summary>
    /// Whether <see cref="TryEnter"/> returns promptly when stopping is signalled. A blocking <c>flock(2)</c> cannot be
    /// interrupted; its acceptor is left to exit by itself once it gets the lock, and unbinding does not wait for it.
    /// </summary>
    bool IsCancellable { get; }

    /// <summary>Releases the mutex taken by <see cref="TryEnter"/>.</summary>
    void Exit();
}
