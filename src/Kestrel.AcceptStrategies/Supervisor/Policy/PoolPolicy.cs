using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// The adaptive pool (<c>MaxWorkers</c> above 0): adds a slot while the accepting workers are together less spare than
/// <c>MinSpareWorkers</c>, and removes the most idle worker's slot while they are more spare than
/// <c>MaxSpareWorkers</c>, one change at a time. Pure, on a <see cref="TimeProvider"/>; the <see cref="SlotReconciler"/>
/// then starts or drains the workers like for SIGTTIN and SIGTTOU.
/// </summary>
/// <remarks>
/// A worker's spare share is the part of the last <see cref="Window"/> it had no request in flight (an async worker
/// has no "busy" state of its own); the pool's spare is their sum. Growing is immediate but waits for the last added
/// worker to accept and be measured (an unmeasured worker counts as wholly spare), so it adds one worker per start-up
/// time plus a second, and <c>SpawnInterval</c> still spaces the starts. Shrinking needs the surplus to last
/// <see cref="ShrinkHold"/> (re-armed after each shrink) and to leave <c>MinSpareWorkers</c> spare after it, so a
/// burst does not flap the pool and <c>MinSpareWorkers = MaxSpareWorkers</c> is a stable setting.
/// </remarks>
internal sealed class PoolPolicy(SupervisorState state, TimeProvider time, ILogger logger)
{
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan ShrinkHold = TimeSpan.FromSeconds(5);

    // While shares still move (a request in flight, or a heartbeat younger than the window), the loop re-evaluates
    // this often even without events: an idle worker's share rises with no heartbeat to say so.
    private static readonly TimeSpan EvaluationPeriod = TimeSpan.FromMilliseconds(250);

    private readonly Dictionary<SupervisedWorker, IdleMeter> _meters = [];
    private long _surplusSince;
    private bool _atMaximum;

    public AcceptStrategyMetrics? Metrics { get; set; }

    private long WindowUnits => time.Units(Window);

    /// <summary>A heartbeat's counts were stored on <paramref name="worker"/>; only accepting workers are measured.</summary>
    public void Measured(SupervisedWorker worker)
    {
        if (worker.State != WorkerState.Active)
        {
            return;
        }

        if (!_meters.TryGetValue(worker, out var meter))
        {
            _meters[worker] = meter = new IdleMeter { Frequency = time.TimestampFrequency };
        }

        meter.Add(worker.LastHeartbeat, worker.Busy, worker.InFlight, WindowUnits);
    }

    /// <summary>Adds or removes at most one slot. Called before every reconciliation while the supervisor runs.</summary>
    public void Resize(WorkerProcessOptions settings, long now)
    {
        foreach (var gone in _meters.Keys.Where(w => w.State != WorkerState.Active || w.Killed).ToList())
        {
            _meters.Remove(gone);
        }

        if (settings.MaxWorkers <= 0)
        {
            _surplusSince = 0;
            return;
        }

        var accepting = state.Slots.Where(s => !s.Removed && s.Active is { Killed: false }).Select(s => s.Active!).ToList();
        var shares = accepting.Select(w => (Worker: w, Idle: _meters.TryGetValue(w, out var m) ? m.IdleShare(now, WindowUnits) : null)).ToList();
        var spare = Math.Round(shares.Sum(s => s.Idle ?? 1), 2);
        var live = state.LiveSlots;

        // A reload lowered MaxWorkers: back under it at once, one worker per event, no hold.
        if (live > settings.MaxWorkers)
        {
            Shrink(shares, spare, settings, "above_max_workers");
            return;
        }

        if (spare < settings.MinSpareWorkers)
        {
            _surplusSince = 0;
            Grow(settings, spare, live);
            return;
        }

        _atMaximum = false;
        var surplus = spare > settings.MaxSpareWorkers && spare - 1 >= settings.MinSpareWorkers && live > 1 && state.AllActive;
        if (!surplus)
        {
            _surplusSince = 0;
        }
        else if (_surplusSince == 0)
        {
            _surplusSince = now;
        }
        else if (time.GetElapsedTime(_surplusSince, now) >= ShrinkHold && Shrink(shares, spare, settings, "spare_above_max"))
        {
            // The next shrink needs a whole hold of its own, measured without the worker just drained.
            _surplusSince = now;
        }
    }

    /// <summary>When <see cref="Resize"/> should run again without an event; null when nothing moves.</summary>
    public long? NextDeadline(WorkerProcessOptions settings, long now)
    {
        if (settings.MaxWorkers <= 0)
        {
            return null;
        }

        // Never in the past: a surplus with nothing to drain yet (every slot mid-replacement) must not spin the loop.
        var soon = now + time.Units(EvaluationPeriod);
        long? next = _surplusSince == 0 ? null : Math.Max(_surplusSince + time.Units(ShrinkHold), soon);
        return _meters.Values.Any(m => m.Serving || now - m.LastAt < WindowUnits) ? Math.Min(next ?? long.MaxValue, soon) : next;
    }

    private void Grow(WorkerProcessOptions settings, double spare, int live)
    {
        if (live >= settings.MaxWorkers)
        {
            if (!_atMaximum)
            {
                _atMaximum = true;
                AcceptStrategyLog.PoolAtMaximum(logger, settings.MaxWorkers, spare, settings.MinSpareWorkers);
            }

            return;
        }

        // One at a time: not while any slot (the last one added, above all) still waits for an accepting worker.
        if (!state.AllActive)
        {
            return;
        }

        state.AddSlot();
        AcceptStrategyLog.PoolGrown(logger, live, live + 1, "spare_below_min", spare, settings.MinSpareWorkers);
        Metrics?.PoolResized("grow", "spare_below_min");
    }

    /// <summary>
    /// Drains the most idle measured worker whose slot is not mid-replacement (any, unmeasured ones counted wholly idle,
    /// when above MaxWorkers); false when there is none.
    /// </summary>
    private bool Shrink(List<(SupervisedWorker Worker, double? Idle)> shares, double spare, WorkerProcessOptions settings, string reason)
    {
        var forced = reason == "above_max_workers";
        var live = state.LiveSlots;
        if (live <= 1)
        {
            return false;
        }

        // Ties (a wholly idle pool) go to the highest slot, so slots stay dense when nothing tells them apart.
        var candidate = shares
            .Where(s => (s.Idle is not null || forced) && s.Worker.Slot.Next is null && !s.Worker.Slot.ReloadRequested)
            .OrderByDescending(s => s.Idle ?? 1)
            .ThenByDescending(s => s.Worker.Slot.Index)
            .FirstOrDefault();
        if (candidate.Worker is null)
        {
            return false;
        }

        var (worker, idle) = candidate;
        state.RemoveSlot(worker.Slot);
        AcceptStrategyLog.PoolShrunk(logger, live, live - 1, reason, spare, settings.MinSpareWorkers, settings.MaxSpareWorkers, worker.Pid, worker.Slot.Index, Math.Round(idle ?? 1, 2));
        Metrics?.PoolResized("shrink", reason);
        _meters.Remove(worker);
        return true;
    }
}
