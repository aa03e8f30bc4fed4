using Kestrel.AcceptStrategies.Listeners;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// An accept mutex factory with faults on demand: mutexes whose <c>TryEnter</c> throws for the first
/// <c>failingEnters</c> calls (across all its mutexes), and a <c>Create</c> that throws from call <c>failingCreate</c> on.
/// Otherwise one in-process semaphore, as <see cref="InProcessAcceptMutexFactory"/>. <c>fault</c> makes what a failing
/// <c>TryEnter</c> throws; by default an exception no mutex throws, where an <see cref="IOException"/> is how the
/// <c>flock</c> mutex reports a failed call.
/// </summary>
internal sealed class FaultyMutexFactory(
    int failingEnters = 0, int failingCreate = int.MaxValue, Func<IAcceptMutex>? inner = null, Func<Exception>? fault = null) : IAcceptMutexFactory
{
    private readonly InProcessAcceptMutexFactory _semaphore = new();
    private int _enters;
    private int _creates;

    public string Kind => "faulty";

    public int Enters => Volatile.Read(ref _enters);

    public IAcceptMutex Create()
    {
        if (Interlocked.Increment(ref _creates) >= failingCreate)
        {
            throw new InvalidOperationException($"Injected fault: mutex {_creates} cannot be created.");
        }

        return new Mutex(this, inner?.Invoke() ?? _semaphore.Create());
    }

    /// <summary>Counts <c>Create</c> calls from zero again.</summary>
    public void Reset() => Volatile.Write(ref _creates, 0);

    public void Dispose() => _semaphore.Dispose();

    private sealed class Mutex(FaultyMutexFactory factory, IAcceptMutex inner) : IAcceptMutex
    {
        public bool IsCancellable => inner.IsCancellable;

        public bool TryEnter(CancellationToken stopping)
        {
            if (Interlocked.Increment(ref factory._enters) <= factory._failingEnters)
            {
                throw factory._fault?.Invoke() ?? new InvalidOperationException("Injected fault: the accept mutex threw.");
            }

            return inner.TryEnter(stopping);
        }

        public void Exit() => inner.Exit();

        public void Dispose() => inner.Dispose();
    }

    private readonly int _failingEnters = failingEnters;
    private readonly Func<Exception>? _fault = fault;
}
