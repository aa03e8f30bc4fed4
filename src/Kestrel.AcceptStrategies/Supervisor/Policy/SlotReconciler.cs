using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// The heart of the <see cref="SlotPolicy"/>: brings every slot towards one accepting worker, starting replacements
/// (in time for a spent budget, for a reload, after a back-off) and promoting standbys. Pure, on a
/// <see cref="TimeProvider"/>.
/// </summary>
internal sealed class SlotReconciler(SupervisorState state, TimeProvider time, Random random, ILogger logger)
{
    public const int MaxDrainingPerSlot = 2;
    private const double ReplacementLeadFactor = 1.5;

    private long _lastSpawnAt;
    private bool _started;

    public WorkerProcessOptions Settings { get; set; } = null!;

    /// <summary>The adaptive pool: adds and removes slots before each reconciliation (off while MaxWorkers is 0).</summary>
    public PoolPolicy Pool { get; } = new(state, time, logger);

    /// <summary>Measured start-up time, smoothed: how early a replacement must start.</summary>
    public double StartupSeconds { get; set; } = 1;

    /// <summary>Brings every slot towards one accepting worker: starts replacements, promotes standbys.</summary>
    public IReadOnlyList<SupervisorIntent> Run(bool stopping)
    {
        if (stopping)
        {
            return state.TakeIntents();
        }

        var now = time.GetTimestamp();

        Pool.Resize(Settings, now);
        state.AdvanceReloadQueue();

        foreach (var slot in state.Slots.Where(s => !s.Removed))
        {
            var next = slot.Next;
            if (next is not null)
            {
                // A killed standby (hung, start timeout) is never promoted: its exit empties the slot's Next instead.
                if (next.State == WorkerState.Standby && !next.Killed && (slot.Active is null || WorkerLimits.Due(slot.Active, now, time) is not null || slot.ReloadRequested))
                {
                    Promote(slot);
                }

                continue;
            }

            if (now < slot.NextSpawnAt || !SpawnAllowed(now))
            {
                continue;
            }

            if (slot.Active is null)
            {
                Spawn(slot, slot.EmptyReason, now);
            }
            else if (slot.ReloadRequested)
            {
                Spawn(slot, SpawnReason.Reload, now);
            }
            else if (ReplacementDue(slot.Active, now) && DrainingCapAllows(slot, now))
            {
                Spawn(slot, SpawnReason.Recycle, now);
            }
        }

        _started = _started || state.AllActive;
        return state.TakeIntents();
    }

    /// <summary>
    /// The earliest future timestamp at which <see cref="Run"/> could start a worker without any event first: a slot's
    /// back-off ending, or <c>SpawnInterval</c> since the last start running out, or the adaptive pool's next look (a shrink's
    /// hold ending, shares still moving). Null when no such clock runs.
    /// </summary>
    public long? NextSpawnDeadline(long now)
    {
        long? next = null;
        foreach (var slot in state.Slots.Where(s => !s.Removed && s.Next is null && s.NextSpawnAt > now))
        {
            next = Math.Min(next ?? long.MaxValue, slot.NextSpawnAt);
        }

        if (Settings.SpawnInterval > TimeSpan.Zero && _lastSpawnAt != 0 && _started)
        {
            var allowed = WorkerTimeouts.After(_lastSpawnAt, Settings.SpawnInterval, time);
            if (allowed > now)
            {
                next = Math.Min(next ?? long.MaxValue, allowed);
            }
        }

        // A lifetime: its replacement starts a lead time before the end; a standby takes over at the end.
        foreach (var slot in state.Slots.Where(s => !s.Removed && s.Active is { Lifetime.Ticks: > 0 }))
        {
            var end = WorkerLimits.LifetimeEnd(slot.Active!, time);
            var at = slot.Next is null ? end - time.Units(Lead) : end;
            if (at > now)
            {
                next = Math.Min(next ?? long.MaxValue, at);
            }
        }

        return Pool.NextDeadline(Settings, now) is { } pool ? Math.Min(next ?? long.MaxValue, pool) : next;
    }

    private double Lead => StartupSeconds * ReplacementLeadFactor;

    // Started early enough to be ready when a limit is reached: the budget's and lifetime's ends are foreseen.
    private bool ReplacementDue(SupervisedWorker active, long now) =>
        RequestBudget.NearEnd(active, Lead) || WorkerLimits.LifetimeNearEnd(active, Lead, now, time) || active.OverMemory;

    // The first workers all start at once; later starts keep SpawnInterval apart.
    private bool SpawnAllowed(long now) =>
        Settings.SpawnInterval == TimeSpan.Zero || _lastSpawnAt == 0 || !_started || time.GetElapsedTime(_lastSpawnAt, now) >= Settings.SpawnInterval;

    private void Spawn(WorkerSlot slot, SpawnReason reason, long now)
    {
        _lastSpawnAt = now;
        state.Add(new SupervisorIntent.Spawn(slot, reason, ++slot.Generations, RequestBudget.Draw(Settings, random), WorkerLimits.DrawLifetime(Settings, random)));
    }

    /// <summary>
    /// Not while <see cref="MaxDrainingPerSlot"/> earlier workers of the slot still drain: any client can spend budgets,
    /// and clients that hold requests open on every old worker would otherwise grow the group without bound.
    /// </summary>
    private bool DrainingCapAllows(WorkerSlot slot, long now)
    {
        var draining = state.Workers.Count(w => w.Slot == slot && w.State == WorkerState.Draining);
        if (draining < MaxDrainingPerSlot)
        {
            slot.RecycleDeferred = false;
            return true;
        }

        if (!slot.RecycleDeferred && WorkerLimits.Due(slot.Active!, now, time) is not null)
        {
            slot.RecycleDeferred = true;
            AcceptStrategyLog.RecycleDeferred(logger, slot.Active!.Pid, slot.Index, draining);
        }

        return false;
    }

    /// <summary>The standby of <paramref name="slot"/> starts accepting; only then does its predecessor drain.</summary>
    private void Promote(WorkerSlot slot)
    {
        if (state.Promote(slot) is { } previous)
        {
            state.Drain(previous, slot.ReloadRequested ? WorkerExitReason.Reload : WorkerLimits.Due(previous, time.GetTimestamp(), time) ?? WorkerExitReason.Recycled);
        }

        if (slot.ReloadRequested)
        {
            state.Reloaded(slot);
        }
    }

    public void Backoff(WorkerSlot slot)
    {
        slot.Failures++;
        var delay = WorkerTimeouts.Backoff(Settings, slot.Failures);
        slot.NextSpawnAt = time.GetTimestamp() + time.Units(delay);
        slot.EmptyReason = SpawnReason.Respawn;
        AcceptStrategyLog.WorkerRespawnDelayed(logger, slot.Index, slot.Failures, (long)delay.TotalMilliseconds);
    }
}
