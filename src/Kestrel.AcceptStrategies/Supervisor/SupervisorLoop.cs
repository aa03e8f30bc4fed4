using System.Threading.Channels;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Processes;
using Kestrel.AcceptStrategies.Supervisor.Status;
using Kestrel.AcceptStrategies.Supervisor.Systemd;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The supervisor's event loop: one reader of typed events (worker messages, exits, signals, ticks) that asks the
/// <see cref="SlotPolicy"/> what to do and carries it out (spawn, tell, signal, close sockets, tell the service
/// manager of a reload). All state is touched on this loop alone, so nothing is locked.
/// </summary>
internal sealed class SupervisorLoop : IAsyncDisposable
{
    private readonly SlotPolicy _policy;
    private readonly IReadOnlyList<SupervisedEndpoint> _endpoints;
    private readonly WorkerFleet _fleet;
    private readonly SettingsReloader _reloader;
    private readonly AcceptStrategyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<SupervisorEvent> _events = Channel.CreateUnbounded<SupervisorEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _allActive = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _allExited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly DeadlineTimer _timer;
    private readonly SupervisorStatus _status;
    private readonly AcceptStrategy _strategy;
    private readonly ServiceNotifier? _notifier;
    private ReloadReport _reloadReport;
    private long _lastTickPlannedAt;
    private Task _loop = Task.CompletedTask;
    private volatile int _alive;
    private volatile int _liveSlots;
    private List<int> _steeredTo = [];

    public SupervisorLoop(
        WorkerProcessOptions settings,
        IReadOnlyList<SupervisedEndpoint> endpoints,
        WorkerLauncher launcher,
        SettingsReloader reloader,
        AcceptStrategyMetrics metrics,
        ServiceNotifier? notifier,
        ILogger logger,
        TimeProvider time)
    {
        _notifier = notifier;
        _policy = new SlotPolicy(settings, time, Random.Shared, logger, metrics);
        _endpoints = endpoints;
        _strategy = launcher.Strategy;
        _fleet = new WorkerFleet(launcher, Post, logger);
        _reloader = reloader;
        _metrics = metrics;
        _logger = logger;
        _time = time;
        _status = new SupervisorStatus(time);
        _timer = new DeadlineTimer(time, plannedAt => Post(new SupervisorEvent.Tick(plannedAt)));
    }

    /// <summary>What the service manager has been told of the last SIGHUP.</summary>
    private enum ReloadReport
    {
        /// <summary>Nothing outstanding.</summary>
        None,

        /// <summary>RELOADING=1 sent: READY=1 follows when every slot runs a new worker, or one fails to start.</summary>
        Pending,

        /// <summary>READY=1 sent after a new worker failed to start; the reload goes on, and its end is a status line.</summary>
        Incomplete,
    }

    /// <summary>Settings re-read on SIGHUP and taken; raised on the loop.</summary>
    public event Action<WorkerProcessOptions>? SettingsChanged;

    /// <summary>Completes once every slot has had an accepting worker.</summary>
    public Task AllActive => _allActive.Task;

    /// <summary>Completes once a stop has begun and every worker has exited.</summary>
    public Task AllExited => _allExited.Task;

    public int Alive => _alive;

    /// <summary>A status line for the service manager, from the counts the loop last published (any thread may ask).</summary>
    public string Describe() => $"{_liveSlots} worker slot(s), {_alive} worker process(es), {_strategy}";

    public void Start()
    {
        _loop = Task.Run(RunAsync, CancellationToken.None);
        Post(new SupervisorEvent.Start());
    }

    public void Post(SupervisorEvent e) => _events.Writer.TryWrite(e);

    public async ValueTask DisposeAsync()
    {
        _events.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _timer.Dispose();
        _fleet.Dispose();
    }

    private async Task RunAsync()
    {
        await foreach (var e in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                Handle(e);
            }
            catch (Exception ex)
            {
                // The supervisor must outlive any one bad event.
                AcceptStrategyLog.SupervisorEventFailed(_logger, ex);
            }

            Steer();
            Publish();
            ReportReloadEnd();
            ScheduleTick();
            if (_policy.AllActive && !_policy.Stopping)
            {
                _allActive.TrySetResult();
            }

            if (_policy.Stopping && _policy.Workers.Count == 0)
            {
                _allExited.TrySetResult();
            }
        }
    }

    /// <summary>The counts other threads read (<see cref="Alive"/>, <see cref="Describe"/>), as the loop has them now.</summary>
    private void Publish()
    {
        _alive = _fleet.Count;
        _liveSlots = _policy.LiveSlots;
    }

    /// <summary>A reload has ended once no slot waits for its new worker (Type=notify-reload waits for this READY=1).</summary>
    private void ReportReloadEnd()
    {
        if (_reloadReport == ReloadReport.None || _policy.ReloadPending || _policy.Stopping)
        {
            return;
        }

        if (_reloadReport == ReloadReport.Pending)
        {
            _notifier?.Ready("reloaded: " + Describe());
        }
        else
        {
            _notifier?.Status("reloaded after retries: " + Describe());
        }

        _reloadReport = ReloadReport.None;
    }

    /// <summary>Sleeps until the policy's next deadline, or the pause-detection cap, whichever is first.</summary>
    private void ScheduleTick()
    {
        var cap = LoopSleepCap.For(_policy.Settings.HangTimeout);
        var capped = _time.GetTimestamp() + _time.Units(cap);
        _timer.Request(Math.Min(_policy.NextDeadline() ?? long.MaxValue, capped));
    }

    private void Handle(SupervisorEvent e)
    {
        switch (e)
        {
            case SupervisorEvent.Start:
                Apply(_policy.Start(_policy.Settings.Workers));
                break;
            case SupervisorEvent.Message { Worker: var worker, Content: var message }:
                if (message.Kind == ControlMessageKind.Heartbeat)
                {
                    var since = (long)_time.GetElapsedTime(worker.LastHeartbeat).TotalMilliseconds;
                    AcceptStrategyLog.HeartbeatReceived(_logger, worker.Pid, worker.Slot.Index, since, message.Requests, message.Connections);
                    _metrics.WorkerServed(worker.Slot.Index, message.Requests - worker.Requests, message.Connections - worker.Connections);
                }

                var intents = _policy.Received(worker, message, out var startup);
                if (startup is { } took)
                {
                    AcceptStrategyLog.WorkerReady(_logger, worker.Pid, worker.Slot.Index, worker.Generation, took, message.StartupWall, message.StartupCpu);
                    _metrics.WorkerStartedUp(worker.Slot.Index, message.StartupWall ?? took, message.StartupCpu);
                }

                Apply(intents);

                // Measured here, not in the worker: a worker that leaks cannot be trusted to report it.
                if (message.Kind == ControlMessageKind.Heartbeat && _policy.Settings.MaxWorkerMemoryMegabytes > 0 && ResidentMemory.Read(worker.Pid) is { } rss)
                {
                    Apply(_policy.MemoryMeasured(worker, rss));
                }

                break;
            case SupervisorEvent.Exited { Worker: var worker, Status: var status }:
                OnExited(worker, status);
                break;
            case SupervisorEvent.Signal { Kind: var signal } when !_policy.Stopping:
                OnSignal(signal);
                break;
            case SupervisorEvent.Tick { PlannedAt: var plannedAt }:
                if (_lastTickPlannedAt != 0)
                {
                    AcceptStrategyLog.SupervisorTimerFired(_logger, (long)_time.GetElapsedTime(_lastTickPlannedAt, plannedAt).TotalMilliseconds);
                }

                _lastTickPlannedAt = plannedAt;
                Apply(_policy.Tick(plannedAt));
                break;
            case SupervisorEvent.Stop:
                Apply(_policy.Stop());
                break;
            case SupervisorEvent.StopDeadline:
                Apply(_policy.StopDeadlinePassed());
                break;
            case SupervisorEvent.TakeBack:
                // The successor may have steered the groups its own way: steer again, whatever was steered before.
                foreach (var endpoint in _endpoints)
                {
                    endpoint.TakeBack();
                }

                _steeredTo = [];
                break;
            case SupervisorEvent.StatusRequested { Reply: var reply }:
                _status.Reply(reply, _strategy, _endpoints, _policy.Workers);
                break;
        }
    }

    private void OnExited(SupervisedWorker worker, int status)
    {
        var intents = _policy.Exited(worker, status, out var reason);
        _fleet.Forget(worker);
        _status.Exited(worker, reason);

        var level = reason.IsExpected() ? LogLevel.Information : LogLevel.Warning;
        var name = reason.Name();
        var statusText = SupervisedWorker.DescribeStatus(status);
        AcceptStrategyLog.WorkerExited(_logger, level, worker.Pid, worker.Slot.Index, worker.Generation, name, statusText, worker.Requests);
        if (reason != WorkerExitReason.Stopped)
        {
            _metrics.WorkerRestarted(reason.Name());
        }

        Apply(intents);

        // A new worker that cannot start keeps its slot's old worker serving and is retried with back-off; a service
        // manager waiting for the reload hears now that it is over for the moment.
        if (reason == WorkerExitReason.FailedToStart && _reloadReport == ReloadReport.Pending && worker.Slot.ReloadRequested)
        {
            _notifier?.Ready($"reload incomplete: a new worker of slot {worker.Slot.Index} failed to start; the previous one serves while it is retried. " + Describe());
            _reloadReport = ReloadReport.Incomplete;
        }
    }

    private void OnSignal(SupervisorSignal signal)
    {
        var live = _policy.LiveSlots;
        switch (signal)
        {
            case SupervisorSignal.Reload:
                _notifier?.Reloading("reloading: " + Describe());
                if (_reloader.Reload(_policy.Settings, out var workers) is not { } settings)
                {
                    // Nothing was replaced, so the reload is over (failed): the service manager must not wait for it.
                    _notifier?.Ready("reload rejected (invalid configuration, see the log): " + Describe());
                    return;
                }

                _reloadReport = ReloadReport.Pending;

                _policy.Settings = settings;
                SettingsChanged?.Invoke(settings);
                var reload = _policy.Reload(workers, out var replacing);
                var added = _policy.LiveSlots - replacing;
                AcceptStrategyLog.SignalReceived(_logger, "SIGHUP", $"replacing {replacing} worker(s) one at a time{(added != 0 ? $", {added:+#;-#} new" : "")}");
                Apply(reload);
                break;
            case SupervisorSignal.ScaleUp when live >= (_policy.Settings.MaxWorkers > 0 ? _policy.Settings.MaxWorkers : SlotPolicy.MaxSlots):
                AcceptStrategyLog.SignalReceived(_logger, "SIGTTIN", $"ignored: {live} workers is the maximum");
                break;
            case SupervisorSignal.ScaleUp:
                AcceptStrategyLog.SignalReceived(_logger, "SIGTTIN", $"workers {live} -> {live + 1}");
                Apply(_policy.ScaleUp());
                Publish();
                _notifier?.Status(Describe());
                break;
            case SupervisorSignal.ScaleDown when _policy.TryScaleDown(out var intents):
                AcceptStrategyLog.SignalReceived(_logger, "SIGTTOU", $"workers {live} -> {live - 1}");
                Apply(intents);
                Publish();
                _notifier?.Status(Describe());
                break;
            case SupervisorSignal.ScaleDown:
                AcceptStrategyLog.SignalReceived(_logger, "SIGTTOU", "ignored: one worker is the minimum");
                break;
        }
    }

    private void Apply(IReadOnlyList<SupervisorIntent> intents)
    {
        // Before any worker hears of the change: a slot leaves the program before its worker is told to drain.
        Steer();
        foreach (var intent in intents)
        {
            switch (intent)
            {
                case SupervisorIntent.Spawn spawn:
                    Spawn(spawn);
                    break;
                case SupervisorIntent.Accept { Worker: var worker }:
                    _fleet.Send(worker, ControlMessage.Accept);
                    break;
                case SupervisorIntent.Drain { Worker: var worker, Reason: var reason }:
                    if (!_fleet.Send(worker, ControlMessage.Drain(reason)))
                    {
                        // Its control socket is gone, so it is exiting or dead; make sure.
                        _ = _fleet.Signal(worker, Libc.SIGTERM);
                    }

                    break;
                case SupervisorIntent.Kill { Worker: var worker, Reason: var reason, Detail: var detail }:
                    AcceptStrategyLog.WorkerKilled(_logger, worker.Pid, worker.Slot.Index, worker.Generation, $"{reason.Name()}: {detail}");
                    _ = _fleet.Signal(worker, Libc.SIGKILL);
                    break;
                case SupervisorIntent.ReleaseSlot { Slot: var slot }:
                    foreach (var endpoint in _endpoints)
                    {
                        endpoint.ReleaseSlot(slot);
                    }

                    break;
                case SupervisorIntent.CloseListeners:
                    // As nginx, gunicorn and HAProxy do: new clients are refused instead of queueing where nobody will
                    // accept them. Draining workers close their own copies as their acceptors stop.
                    AcceptStrategyLog.SupervisorStopping(_logger, Environment.ProcessId, _fleet.Count);
                    foreach (var endpoint in _endpoints)
                    {
                        endpoint.Dispose();
                    }

                    break;
            }
        }
    }

    /// <summary>
    /// ReusePort: new connections go to the slots whose worker accepts, or to every slot while none does (they queue
    /// there until one does), never to a slot whose worker crashed, waits out a back-off or was drained.
    /// </summary>
    private void Steer()
    {
        if (_strategy != AcceptStrategy.ReusePort)
        {
            return;
        }

        var slots = _policy.Slots.Where(s => !s.Removed && s.Active is { State: WorkerState.Active }).Select(s => s.Index).Order().ToList();
        if (slots.Count == 0)
        {
            slots = [.. _policy.Slots.Where(s => !s.Removed).Select(s => s.Index).Order()];
        }

        if (slots.SequenceEqual(_steeredTo))
        {
            return;
        }

        _steeredTo = slots;
        foreach (var endpoint in _endpoints)
        {
            endpoint.Steer(slots);
        }
    }

    private void Spawn(SupervisorIntent.Spawn spawn)
    {
        (int Pid, WorkerHandle Handle) launched;
        try
        {
            launched = _fleet.Launch(spawn);
        }
        catch (Exception e)
        {
            AcceptStrategyLog.WorkerSpawnFailed(_logger, spawn.Slot.Index, e);
            _policy.SpawnFailed(spawn.Slot);
            return;
        }

        var worker = _policy.Spawned(spawn, launched.Pid);
        _status.Started(worker);
        AcceptStrategyLog.WorkerStarted(_logger, worker.Pid, spawn.Slot.Index, spawn.Generation, Name(spawn.Reason), spawn.Budget);
        _fleet.Watch(worker, launched.Handle);
    }

    private static string Name(SpawnReason reason) => reason switch
    {
        SpawnReason.Initial => "initial",
        SpawnReason.Respawn => "respawn",
        SpawnReason.Recycle => "recycle",
        SpawnReason.Reload => "reload",
        _ => "scaled",
    };
}
