using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// What the supervisor knows: its slots, its workers, the reload queue, and the intents decided so far. The
/// operations here change state and record the matching intent together, so the two cannot disagree.
/// </summary>
internal sealed class SupervisorState(TimeProvider time)
{
    private readonly List<SupervisorIntent> _intents = [];

    public List<WorkerSlot> Slots { get; } = [];

    public List<SupervisedWorker> Workers { get; } = [];

    /// <summary>Slots waiting to be reloaded, one at a time, head first.</summary>
    public Queue<WorkerSlot> ReloadQueue { get; } = new();

    public int LiveSlots => Slots.Count(s => !s.Removed);

    public bool AllActive => Slots.TrueForAll(s => s.Removed || s.Active is not null);

    public void Add(SupervisorIntent intent) => _intents.Add(intent);

    /// <summary>The intents recorded since the last call.</summary>
    public IReadOnlyList<SupervisorIntent> TakeIntents()
    {
        SupervisorIntent[] taken = [.. _intents];
        _intents.Clear();
        return taken;
    }

    public void Drain(SupervisedWorker worker, WorkerExitReason reason)
    {
        worker.ExitReason = reason;
        worker.State = WorkerState.Draining;
        worker.DrainStartedAt = time.GetTimestamp();
        _intents.Add(new SupervisorIntent.Drain(worker, reason));
    }

    public void Kill(SupervisedWorker worker, WorkerExitReason reason, string detail)
    {
        worker.ExitReason = reason;
        worker.Killed = true;
        _intents.Add(new SupervisorIntent.Kill(worker, reason, detail));
    }

    /// <summary>
    /// One slot more, with the lowest index no live slot has: n while slots are 0..n-1 (SIGTTOU removes the highest), the
    /// gap the adaptive pool left when it drained a worker in the middle.
    /// </summary>
    public void AddSlot()
    {
        var index = 0;
        while (Slots.Exists(s => !s.Removed && s.Index == index))
        {
            index++;
        }

        Slots.Add(new WorkerSlot(index) { EmptyReason = SpawnReason.Scaled });
    }

    /// <summary>Removes <paramref name="slot"/>, by default the highest (so ReusePort socket groups stay contiguous).</summary>
    public void RemoveSlot(WorkerSlot? slot = null)
    {
        var removed = slot ?? Slots.Where(s => !s.Removed).MaxBy(s => s.Index)!;
        removed.Removed = true;
        if (removed.Next is { } next)
        {
            removed.Next = null;
            Kill(next, WorkerExitReason.Scaled, "its slot was removed before it took over");
        }

        // ReusePort: dropping the supervisor's copies now leaves only the worker's, which its acceptors close the
        // moment they stop, so a connection can land in a queue nobody accepts from only in that instant.
        _intents.Add(new SupervisorIntent.ReleaseSlot(removed.Index));
        if (removed.Active is { } active)
        {
            Drain(active, WorkerExitReason.Scaled);
        }
        else
        {
            Slots.Remove(removed);
        }
    }
}
