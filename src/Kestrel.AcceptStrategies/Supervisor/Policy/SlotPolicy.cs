using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// The supervisor's decisions, as pure code over its state and a <see cref="TimeProvider"/>: each call takes an event
/// and returns what to do (<see cref="SupervisorIntent"/>). No process, socket or thread is touched here, so every
/// rule is unit-tested on a fake clock; the loop carries the intents out and reports back.
/// </summary>
/// <remarks>
/// A replacement never leaves a gap: it is started while its predecessor still accepts, warms up, reports ready and
/// stands by; only once it accepts is its predecessor told to drain. It is started early enough (the predecessor's
/// request rate times the measured start-up time) that it is usually ready when the budget is spent; until then the
/// predecessor serves past its budget rather than leave the slot empty.
/// </remarks>
internal sealed class SlotPolicy
{
    /// <summary>The most slots a supervisor runs: the options' upper bound for Workers and MaxWorkers, and SIGTTIN's without MaxWorkers.</summary>
    public const int MaxSlots = 1024;

    public static readonly TimeSpan DrainKillMargin = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a worker must have been ready for its crash not to count as a failure. A crash sooner than that (a request
    /// or a hosted service that kills every new worker) is replaced at once the first time, but counts: the next early
    /// crash or failed start in the slot backs off, so a slot that keeps crashing does not start workers as fast as they
    /// die. A worker that stays up this long clears its slot's failures.
    /// </summary>
    public static readonly TimeSpan StableAfterReady = TimeSpan.FromSeconds(10);

    // A tick this much later than planned means the supervisor itself did not run (SIGSTOP, a starved machine): the
    // workers' heartbeats are waiting unread in their sockets, so the gap must not count against them.
    public static readonly TimeSpan PauseThreshold = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    private readonly SupervisorState _state;
    private readonly SlotReconciler _reconciler;

    public SlotPolicy(WorkerProcessOptions settings, TimeProvider time, Random random, ILogger logger, AcceptStrategyMetrics? metrics = null)
    {
        _time = time;
        _logger = logger;
        _state = new SupervisorState(time);
        _reconciler = new SlotReconciler(_state, time, random, logger) { Settings = settings };
        _reconciler.Pool.Metrics = metrics;
    }

    public WorkerProcessOptions Settings
    {
        get => _reconciler.Settings;
        set => _reconciler.Settings = value;
    }

    public IReadOnlyList<SupervisedWorker> Workers => _state.Workers;

    public IReadOnlyList<WorkerSlot> Slots => _state.Slots;

    public int LiveSlots => _state.LiveSlots;

    public bool Stopping { get; private set; }

    /// <summary>Every live slot has an accepting worker.</summary>
    public bool AllActive => _state.AllActive;

    /// <summary>A reload (SIGHUP) still has slots waiting for their new worker.</summary>
    public bool ReloadPending => _state.ReloadPending;

    /// <summary>Nothing in motion: one accepting worker per slot, no reload, no back-off.</summary>
    public bool Steady => !Stopping && !_state.ReloadPending && _state.Workers.Count == LiveSlots && _state.Workers.All(w => w.State == WorkerState.Active);

    public IReadOnlyList<SupervisorIntent> Start(int workers)
    {
        _state.AddInitialSlots(workers);
        return _reconciler.Run(Stopping);
    }

    /// <summary>The loop started the worker a <see cref="SupervisorIntent.Spawn"/> asked for.</summary>
    public SupervisedWorker Spawned(SupervisorIntent.Spawn spawn, int pid)
    {
        var worker = new SupervisedWorker(pid, spawn.Slot, spawn.Generation, spawn.Budget, _time.GetTimestamp()) { Lifetime = spawn.Lifetime };
        _state.Started(worker);
        return worker;
    }

    /// <summary>The loop could not start it (descriptors, memory): wait like after a worker that failed to start.</summary>
    public void SpawnFailed(WorkerSlot slot) => _reconciler.Backoff(slot);

    public IReadOnlyList<SupervisorIntent> Tick(long plannedAt)
    {
        var now = _time.GetTimestamp();
        var late = _time.GetElapsedTime(plannedAt, now);
        if (late > PauseThreshold)
        {
            AcceptStrategyLog.SupervisorPaused(_logger, (long)late.TotalMilliseconds);
            WorkerTimeouts.Forgive(_state.Workers, now - plannedAt, now);
        }

        foreach (var (worker, reason, detail) in WorkerTimeouts.Expired(_state.Workers, Settings, _time, now).ToList())
        {
            _state.Kill(worker, reason, detail);
        }

        return _reconciler.Run(Stopping);
    }

    /// <summary>
    /// When <see cref="Tick"/> next has something to do unless an event comes first: a start, hang or drain timeout
    /// running out, a back-off or spawn interval ending. Null when nothing is timed (the loop then ticks only to notice
    /// its own pauses). Request budgets and memory need no clock (counts and measurements arrive as events); lifetimes do.
    /// </summary>
    public long? NextDeadline()
    {
        var now = _time.GetTimestamp();
        var expiry = WorkerTimeouts.NextExpiry(_state.Workers, Settings, _time);
        var spawn = Stopping ? null : _reconciler.NextSpawnDeadline(now);
        return expiry is null ? spawn : spawn is null ? expiry : Math.Min(expiry.Value, spawn.Value);
    }

    /// <summary>A message from a worker; returns the start-up time when it is a first <c>ready</c>.</summary>
    public IReadOnlyList<SupervisorIntent> Received(SupervisedWorker worker, ControlMessage message, out TimeSpan? startup)
    {
        startup = null;
        if (!_state.Workers.Contains(worker))
        {
            return [];
        }

        var now = _time.GetTimestamp();
        var interval = _time.GetElapsedTime(worker.LastHeartbeat, now).TotalSeconds;
        worker.LastHeartbeat = now;
        switch (message.Kind)
        {
            case ControlMessageKind.Ready when worker.State == WorkerState.Starting && !worker.Killed:
                worker.State = WorkerState.Standby;
                startup = _time.GetElapsedTime(worker.StartedAt, now);
                _reconciler.StartupSeconds = _reconciler.StartupSeconds * 0.5 + startup.Value.TotalSeconds * 0.5;
                worker.ReadyAt = now;
                break;
            case ControlMessageKind.Heartbeat:
                if (worker.Slot.Failures != 0 && worker.ReadyAt is { } readyAt && _time.GetElapsedTime(readyAt, now) >= StableAfterReady)
                {
                    worker.Slot.Failures = 0;
                }

                if (interval > 0 && worker.State == WorkerState.Active)
                {
                    worker.RequestRate = worker.RequestRate * 0.7 + (message.Requests - worker.Requests) / interval * 0.3;
                }

                worker.Requests = message.Requests;
                worker.Connections = message.Connections;
                worker.OpenConnections = message.OpenConnections;
                worker.InFlight = message.InFlight;
                worker.Busy = TimeSpan.FromMilliseconds(message.BusyMilliseconds);
                worker.Accepted = message.Accepted ?? worker.Accepted;
                _reconciler.Pool.Measured(worker);
                break;
            case ControlMessageKind.BudgetSpent:
                worker.Requests = Math.Max(worker.Requests, message.Requests);
                break;
        }

        return _reconciler.Run(Stopping);
    }

    /// <summary>
    /// The loop read an accepting worker's resident memory (VmRSS) at a heartbeat. Past <c>MaxWorkerMemoryMegabytes</c>
    /// it gets a replacement at once (no lead time: nothing predicts when a worker will cross it).
    /// </summary>
    public IReadOnlyList<SupervisorIntent> MemoryMeasured(SupervisedWorker worker, long rssBytes)
    {
        if (!_state.Workers.Contains(worker))
        {
            return [];
        }

        worker.RssBytes = rssBytes;
        var limit = Settings.MaxWorkerMemoryMegabytes;
        if (limit > 0 && !worker.OverMemory && worker.State == WorkerState.Active && rssBytes > limit * WorkerLimits.Megabyte)
        {
            worker.OverMemory = true;
            AcceptStrategyLog.WorkerOverMemory(_logger, worker.Pid, worker.Slot.Index, rssBytes / WorkerLimits.Megabyte, limit);
        }

        return _reconciler.Run(Stopping);
    }

    /// <summary>A worker was reaped; returns why it ended.</summary>
    public IReadOnlyList<SupervisorIntent> Exited(SupervisedWorker worker, int status, out WorkerExitReason reason)
    {
        var slot = worker.Slot;
        var wasStarting = worker.State == WorkerState.Starting;

        // Exit code 0 unasked: the worker was stopped from outside (a terminal's SIGINT reaches the whole group).
        reason = worker.ExitReason ?? (wasStarting ? WorkerExitReason.FailedToStart : status == 0 ? WorkerExitReason.Exited : WorkerExitReason.Crashed);
        var stable = worker.ReadyAt is { } readyAt && _time.GetElapsedTime(readyAt) >= StableAfterReady;
        if (stable)
        {
            slot.Failures = 0;
        }

        _state.Exited(worker);
        var crashedEarly = reason == WorkerExitReason.Crashed && !stable;
        if (!Stopping && !slot.Removed && (reason == WorkerExitReason.FailedToStart || (crashedEarly && slot.Failures > 0)))
        {
            _reconciler.Backoff(slot);
        }
        else if (crashedEarly)
        {
            // One early crash is replaced at once, as any crash; the next in a row (or a failed start) backs off.
            slot.Failures = 1;
        }

        return _reconciler.Run(Stopping);
    }

    /// <summary>
    /// SIGHUP: replace every worker one slot at a time. Everything started before the signal goes: a replacement
    /// already starting or standing by runs the old code, so it is killed (it has accepted nothing) and started anew.
    /// <paramref name="workers"/> is a new worker count from configuration, if it changed.
    /// </summary>
    public IReadOnlyList<SupervisorIntent> Reload(int? workers, out int replacing)
    {
        foreach (var slot in _state.Slots)
        {
            _state.KillNext(slot, WorkerExitReason.Superseded, "started before the reload signal");
        }

        var target = Math.Max(1, workers ?? LiveSlots);
        while (LiveSlots > target)
        {
            _state.RemoveSlot();
        }

        var live = _state.QueueReload();

        // New slots start workers after the signal anyway: nothing to reload there.
        while (LiveSlots < target)
        {
            _state.AddSlot();
        }

        replacing = live.Count;
        return _reconciler.Run(Stopping);
    }

    /// <summary>SIGTTIN: one slot more. Live slots are always 0..n-1 (removal takes the highest), so the new one is n.</summary>
    public IReadOnlyList<SupervisorIntent> ScaleUp()
    {
        _state.AddSlot();
        return _reconciler.Run(Stopping);
    }

    /// <summary>SIGTTOU: one slot fewer, never below one; false when already at one.</summary>
    public bool TryScaleDown(out IReadOnlyList<SupervisorIntent> intents)
    {
        if (LiveSlots <= 1)
        {
            intents = [];
            return false;
        }

        _state.RemoveSlot();
        intents = _reconciler.Run(Stopping);
        return true;
    }

    /// <summary>A graceful stop: listeners close, starting and standby workers are killed, accepting ones drain.</summary>
    public IReadOnlyList<SupervisorIntent> Stop()
    {
        Stopping = true;
        foreach (var worker in _state.Workers.Where(w => !w.Killed))
        {
            if (worker.State is WorkerState.Starting or WorkerState.Standby)
            {
                _state.Kill(worker, WorkerExitReason.Stopped, "the supervisor is stopping");
            }
            else if (worker.State != WorkerState.Draining)
            {
                _state.Drain(worker, WorkerExitReason.Stopped);
            }
        }

        _state.Add(new SupervisorIntent.CloseListeners());
        return _state.TakeIntents();
    }

    /// <summary>The stop's deadline passed: kill whatever still runs.</summary>
    public IReadOnlyList<SupervisorIntent> StopDeadlinePassed()
    {
        foreach (var worker in _state.Workers.Where(w => !w.Killed))
        {
            _state.Kill(worker, WorkerExitReason.Stopped, "still running when the graceful shutdown timeout ran out");
        }

        return _state.TakeIntents();
    }
}
