namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// The accept mutex for acceptors of one process: one semaphore shared by every acceptor of a listener.
/// </summary>
internal sealed class InProcessAcceptMutexFactory : IAcceptMutexFactory
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);
    private readonly Mutex _mutex;

    public InProcessAcceptMutexFactory() => _mutex = new Mutex(_semaphore);

    public string Kind => "in-process";

    public IAcceptMutex Create() => _mutex;

    public void Dispose() => _semaphore.Dispose();

    private sealed class Mutex(SemaphoreSlim semaphore) : IAcceptMutex
    {
        public bool TryEnter(CancellationToken stopping)
        {
            try
            {
                semaphore.Wait(stopping);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        public bool IsCancellable => true;

        public void Exit() => semaphore.Release();

        public void Dispose()
        {
            // The factory owns the semaphore.
        }
    }
}
