using System.Diagnostics;
using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// The requests this worker has started, against the budget the supervisor drew for it, and how much of the time it had
/// one in flight: the supervisor's measure of how spare an async worker is.
/// </summary>
internal sealed class WorkerRequests(WorkerIdentity worker, WorkerControlClient control)
{
    private long _count;
    private long _inFlight;
    private long _busySince;
    private long _busyTicks;
    private int _budgetReported;
    private TaskCompletionSource? _waiter;

    public long Count => Interlocked.Read(ref _count);

    public long InFlight => Math.Max(0, Interlocked.Read(ref _inFlight));

    /// <summary>
    /// Time so far with at least one request in flight, the current spell included. Two timestamps per busy spell, not
    /// per request; a race between a spell's end and the next one's start misplaces a few microseconds, never more.
    /// </summary>
    public TimeSpan Busy
    {
        get
        {
            var busy = Interlocked.Read(ref _busyTicks);
            if (Interlocked.Read(ref _inFlight) > 0 && Interlocked.Read(ref _busySince) is var since and > 0)
            {
                busy += Math.Max(0, Stopwatch.GetTimestamp() - since);
            }

            return Stopwatch.GetElapsedTime(0, busy);
        }
    }

    /// <summary>Counts one request (keep-alive ones included); the one that spends the budget tells the supervisor.</summary>
    public void Started()
    {
        if (Interlocked.Increment(ref _inFlight) == 1)
        {
            Interlocked.Exchange(ref _busySince, Stopwatch.GetTimestamp());
        }

        var count = Interlocked.Increment(ref _count);
        var budget = worker.Budget;
        if (count >= budget && budget > 0 && Interlocked.Exchange(ref _budgetReported, 1) == 0)
        {
            control.TrySend(ControlMessage.BudgetSpent(count));
        }

        // One volatile read per request; only the first request after an idle spell wakes the heartbeat.
        WakeHeartbeat();
    }

    /// <summary>The response of a request <see cref="Started"/> counted is complete (or the request was aborted).</summary>
    public void Ended()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && Interlocked.Exchange(ref _busySince, 0) is var since and > 0)
        {
            Interlocked.Add(ref _busyTicks, Math.Max(0, Stopwatch.GetTimestamp() - since));
        }
    }

    /// <summary>Completes at the next request: an idle heartbeat sleeps long, but not past the end of the idle spell.</summary>
    public Task NextRequest()
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _waiter, waiter);
        return waiter.Task;
    }

    /// <summary>
    /// Forgets the warm-up, which is not the app's traffic, and wakes the heartbeat: an idle one compares counts, and
    /// a warm-up that came and went between two of its looks would leave the supervisor the counts of before the
    /// bind until the idle interval.
    /// </summary>
    public void Reset()
    {
        Interlocked.Exchange(ref _count, 0);
        Interlocked.Exchange(ref _budgetReported, 0);
        WakeHeartbeat();
    }

    private void WakeHeartbeat()
    {
        if (Volatile.Read(ref _waiter) is { } waiter && Interlocked.CompareExchange(ref _waiter, null, waiter) == waiter)
        {
            waiter.TrySetResult();
        }
    }
}
