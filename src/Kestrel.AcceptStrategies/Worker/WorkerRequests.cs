using Kestrel.AcceptStrategies.Supervisor;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>The requests this worker has started, against the budget the supervisor drew for it.</summary>
internal sealed class WorkerRequests(WorkerIdentity worker, WorkerControlClient control)
{
    private long _count;
    private int _budgetReported;
    private TaskCompletionSource? _waiter;

    public long Count => Interlocked.Read(ref _count);

    /// <summary>Counts one request (keep-alive ones included); the one that spends the budget tells the supervisor.</summary>
    public void Started()
    {
        var count = Interlocked.Increment(ref _count);
        var budget = worker.Budget;
        if (count >= budget && budget > 0 && Interlocked.Exchange(ref _budgetReported, 1) == 0)
        {
            control.TrySend(ControlMessage.BudgetSpent(count));
        }

        // One volatile read per request; only the first request after an idle spell wakes the heartbeat.
        if (Volatile.Read(ref _waiter) is { } waiter && Interlocked.CompareExchange(ref _waiter, null, waiter) == waiter)
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Completes at the next request: an idle heartbeat sleeps long, but not past the end of the idle spell.</summary>
    public Task NextRequest()
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _waiter, waiter);
        return waiter.Task;
    }

    /// <summary>Forgets the warm-up, which is not the app's traffic.</summary>
    public void Reset()
    {
        Interlocked.Exchange(ref _count, 0);
        Interlocked.Exchange(ref _budgetReported, 0);
    }
}
