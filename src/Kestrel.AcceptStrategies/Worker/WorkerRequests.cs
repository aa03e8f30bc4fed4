using Kestrel.AcceptStrategies.Supervisor;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>The requests this worker has started, against the budget the supervisor drew for it.</summary>
internal sealed class WorkerRequests(WorkerIdentity worker, WorkerControlClient control)
{
    private long _count;
    private int _budgetReported;

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
    }

    /// <summary>Forgets the warm-up, which is not the app's traffic.</summary>
    public void Reset()
    {
        Interlocked.Exchange(ref _count, 0);
        Interlocked.Exchange(ref _budgetReported, 0);
    }
}
