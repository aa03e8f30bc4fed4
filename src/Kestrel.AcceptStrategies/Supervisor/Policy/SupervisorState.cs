using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// What the supervisor knows: its slots, its workers, the reload queue, and the intents decided so far. The one owner
/// of those collections: <see cref="SlotPolicy"/>, <see cref="SlotReconciler"/> and <see cref="PoolPolicy"/> read
/// them and change them only through the operations here, which change state and record the matching intent together,
/// so the two cannot disagree.
/// </summary>
internal sealed class SupervisorState(TimeProvider time)
{
    private readonly List<SupervisorIntent> _intents = [];
    private readonly List<WorkerSlot> _slots = [];
    private readonly List<SupervisedWorker> _workers = [];

    // Slots waiting to be reloaded, one at a time, head first.
    private readonly Queue<WorkerSlot> _reloadQueue = new();

    public IReadOnlyList<WorkerSlot> Slots => _slots;

    public IReadOnlyList<SupervisedWorker> Workers => _workers;

    /// <summary>Some slot still waits for its reload.</summary>
    public bool ReloadPending => _reloadQueue.Count > 0;

    public int LiveSlots => _slots.Count(s => !s.Removed);

    public bool AllActive => _slots.TrueForAll(s => s.Removed || s.Active is not null);

    public void Add(SupervisorIntent intent) => _intents.Add(intent);

    /// <summary>The intents recorded since the last call.</summary>
    public IReadOnlyList<SupervisorIntent> TakeIntents()
    {
        SupervisorIntent[] taken = [.. _intents];
        _intents.Clear();
        return taken;
    }

    /// <summary>The first slots, 0..<paramref name="count"/>-1.</summary>
    public void AddInitialSlots(int count)
    {
        for (var i = 0; i < count; i++)
        {
            _slots.Add(new WorkerSlot(i));
        }
    }

    /// <summary>A worker the loop started for its slot: the slot's next worker until it takes over.</summary>
    public void Started(SupervisedWorker worker)
    {
        worker.Slot.Next = worker;
        _workers.Add(worker);
    }

    /// <summary>
    /// A worker was reaped: it leaves its slot (an active one leaves it to a respawn), and a removed slot goes with its
    /// last worker.
    /// </summary>
    public void Exited(SupervisedWorker worker)
    {
        _workers.Remove(worker);
        var slot = worker.Slot;
        if (slot.Active == worker)
        {
            slot.Active = null;
            slot.EmptyReason = SpawnReason.Respawn;
        }

        if (slot.Next == worker)
        {
            slot.Next = null;
        }

        if (slot.Removed && slot.Active is null && slot.Next is null)
        {
            _slots.Remove(slot);
        }
    }

    /// <summary>The standby of <paramref name="slot"/> starts accepting; returns the worker it replaces, if any.</summary>
    public SupervisedWorker? Promote(WorkerSlot slot)
    {
        var next = slot.Next!;
        var previous = slot.Active;
        next.State = WorkerState.Active;
        _intents.Add(new SupervisorIntent.Accept(next));
        slot.Active = next;
        slot.Next = null;
        return previous;
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

    /// <summary>Kills the worker starting (or standing by) in <paramref name="slot"/>, if any: it will not take over.</summary>
    public void KillNext(WorkerSlot slot, WorkerExitReason reason, string detail)
    {
        if (slot.Next is { } next)
        {
            slot.Next = null;
            Kill(next, reason, detail);
        }
    }

    /// <summary>
    /// One slot more, with the lowest index no live slot has: n while slots are 0..n-1 (SIGTTOU removes the highest), the
    /// gap the adaptive pool left when it drained a worker in the middle.
    /// </summary>
    public void AddSlot()
    {
        var index = 0;
        while (_slots.Exists(s => !s.Removed && s.Index == index))
        {
            index++;
        }

        _slots.Add(new WorkerSlot(index) { EmptyReason = SpawnReason.Scaled });
    }

    /// <summary>Removes <paramref name="slot"/>, by default the highest (so ReusePort socket groups stay contiguous).</summary>
    public void RemoveSlot(WorkerSlot? slot = null)
    {
        var removed = slot ?? _slots.Where(s => !s.Removed).MaxBy(s => s.Index)!;
        removed.Removed = true;
        KillNext(removed, WorkerExitReason.Scaled, "its slot was removed before it took over");

        // ReusePort: the slot is out of the steering program before its worker is told to drain (the loop steers
        // before it sends), and the worker takes what is queued when it stops accepting.
        _intents.Add(new SupervisorIntent.ReleaseSlot(removed.Index));
        if (removed.Active is { } active)
        {
            Drain(active, WorkerExitReason.Scaled);
        }
        else
        {
            _slots.Remove(removed);
        }
    }

    /// <summary>Queues every live slot not queued yet for a reload; returns them all (the live slots).</summary>
    public IReadOnlyList<WorkerSlot> QueueReload()
    {
        var live = _slots.Where(s => !s.Removed).ToList();
        foreach (var slot in live.Where(s => !_reloadQueue.Contains(s)))
        {
            _reloadQueue.Enqueue(slot);
        }

        return live;
    }

    /// <summary>Flags the head of the reload queue; a slot removed while queued has nothing left to reload.</summary>
    public void AdvanceReloadQueue()
    {
        while (_reloadQueue.TryPeek(out var removed) && removed.Removed)
        {
            _reloadQueue.Dequeue();
        }

        if (_reloadQueue.TryPeek(out var head))
        {
            head.ReloadRequested = true;
        }
    }

    /// <summary><paramref name="slot"/>'s reload is done (its new worker accepts): the next queued slot's turn.</summary>
    public void Reloaded(WorkerSlot slot)
    {
        slot.ReloadRequested = false;
        if (_reloadQueue.TryPeek(out var head) && head == slot)
        {
            _reloadQueue.Dequeue();
            AdvanceReloadQueue();
        }
    }
}
