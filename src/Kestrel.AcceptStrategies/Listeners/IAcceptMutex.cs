namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// The lock that <see cref="AcceptStrategy.Serialized"/> acceptors hold around <c>poll(2)</c> + <c>accept(2)</c>.
/// Each acceptor gets its own instance from an <see cref="IAcceptMutexFactory"/>, because a cross-process
/// <c>flock(2)</c> belongs to an open file description and must not be shared between acceptors.
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
