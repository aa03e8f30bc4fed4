using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The supervisor (<c>Workers &gt; 0</c>, in the process the user started): starts the workers once Kestrel has
/// bound every endpoint, keeps one accepting worker per slot, replaces workers that spend their request budget,
/// crash or hang, rolls them on SIGHUP, scales on SIGTTIN/SIGTTOU, and stops them gracefully with the host.
/// </summary>
/// <remarks>
/// <para>
/// All state lives on one event loop (spawns, worker messages, exits, signals, a 50 ms tick), so nothing is locked.
/// </para>
/// <para>
/// A replacement never leaves a gap: it is started while its predecessor still accepts, warms up, reports ready and
/// stands by; only once it accepts is its predecessor told to drain (stop accepting, answer with
/// <c>Connection: close</c>, exit 0). It is started early enough (the predecessor's request rate times the
/// measured start-up time) that it is usually ready when the budget is spent; until then the predecessor keeps
/// serving past its budget rather than leave the slot empty.
/// </para>
/// </remarks>
internal sealed class WorkerSupervisor : IHostedLifecycleService, IDisposable
{
    // Fine-grained while something is in motion (starts, standbys, drains, back-offs, reloads); coarse when every slot
    // has its one accepting worker, so an idle group does not keep a core awake.
    private const int BusyTickMilliseconds = 50;
    private const int SteadyTickMilliseconds = 500;
    private const double ReplacementLeadFactor = 1.5;
    private const int MaxDrainingPerSlot = 2;
    private static readonly TimeSpan DrainKillMargin = TimeSpan.FromSeconds(5);

    // A tick this much later than planned means the supervisor itself did not run (SIGSTOP, a starved machine): the
    // workers' heartbeats are waiting unread in their sockets, so the gap must not count against them.
    private static readonly TimeSpan PauseThreshold = TimeSpan.FromSeconds(1);

    private readonly AcceptStrategyProcess _process;
    private readonly IOptions<AcceptStrategyOptions> _options;
    private readonly IOptionsFactory<AcceptStrategyOptions> _optionsFactory;
    private readonly IConfiguration _configuration;
    private readonly SupervisorSockets _sockets;
    private readonly AcceptStrategyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly HostOptions _hostOptions;
    private readonly Channel<Action> _events = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<WorkerSlot> _slots = [];
    private readonly List<SupervisedWorker> _workers = [];
    private readonly TaskCompletionSource _allActive = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _allExited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly List<PosixSignalRegistration> _signals = [];
    private readonly Queue<WorkerSlot> _reloadQueue = new();
    private WorkerExitWatcher? _exits;

    private AcceptStrategyOptions _settings = null!;
    private int _configuredWorkers;
    private IReadOnlyList<SupervisedEndpoint> _endpoints = [];
    private int _lockFd = -1;
    private Task? _loop;
    private long _lastSpawnAt;
    private double _startupSeconds = 1;
    private bool _stopping;
    private volatile bool _steady;
    private volatile int _alive;

    public WorkerSupervisor(
        AcceptStrategyProcess process,
        IOptions<AcceptStrategyOptions> options,
        IOptionsFactory<AcceptStrategyOptions> optionsFactory,
        IConfiguration configuration,
        SupervisorSockets sockets,
        AcceptStrategyMetrics metrics,
        IOptions<HostOptions> hostOptions,
        ILoggerFactory loggerFactory)
    {
        _hostOptions = hostOptions.Value;
        _process = process;
        _options = options;
        _optionsFactory = optionsFactory;
        _configuration = configuration;
        _sockets = sockets;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger(AcceptStrategyLog.CategoryName);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>After every hosted service started, so Kestrel has bound every endpoint: start the workers.</summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        if (_process.Role != AcceptStrategyRole.Supervisor)
        {
            return;
        }

        _settings = _options.Value;
        _configuredWorkers = _settings.Workers;

        // The host must outlast the workers' drain. Set here, not through options configuration, so that the
        // options are validated at start-up like every other (the host reads HostOptions while it is being built).
        ExtendShutdownTimeout();

        _endpoints = _sockets.Snapshot();
        if (_endpoints.Count == 0)
        {
            AcceptStrategyLog.NoEndpoints(_logger, _settings.Workers);
            throw new InvalidOperationException(
                $"AcceptStrategy:Workers = {_settings.Workers}, but Kestrel bound no IP endpoint to hand to the workers (Unix sockets, named pipes and file handles stay with Kestrel's own transport).");
        }

        if (_settings.Strategy == AcceptStrategy.Serialized)
        {
            CreateLockFile();
        }

        _metrics.ObserveWorkersAlive(() => _alive);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Worker processes need Linux.");
        }

        foreach (var (signal, name) in new[] { (PosixSignal.SIGHUP, "SIGHUP"), (PosixSignal.SIGTTIN, "SIGTTIN"), (PosixSignal.SIGTTOU, "SIGTTOU") })
        {
            _signals.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                Post(() => OnSignal(name));
            }));
        }

        for (var i = 0; i < _settings.Workers; i++)
        {
            _slots.Add(new WorkerSlot(i));
        }

        _exits = new WorkerExitWatcher();

        _loop = Task.Run(RunLoopAsync, CancellationToken.None);
        _ = Task.Run(TickAsync, CancellationToken.None);

        // Application started means serving: wait (bounded) for every slot to accept. A slot whose worker fails keeps
        // retrying with back-off; the supervisor does not give up on it.
        try
        {
            await _allActive.Task.WaitAsync(_settings.WorkerStartTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Logged per worker by the event loop.
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped while starting (SIGTERM in the first moments, or during a slow warm-up): not an error. The host
            // goes on to StoppingAsync, which stops the workers already started.
        }
    }

    private void ExtendShutdownTimeout()
    {
        var needed = _settings.GracefulShutdownTimeout + DrainKillMargin + DrainKillMargin;
        if (_hostOptions.ShutdownTimeout < needed)
        {
            _hostOptions.ShutdownTimeout = needed;
        }
    }

    /// <summary>Before Kestrel stops (and closes the supervisor's copies of the sockets): drain every worker.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_loop is null)
        {
            return;
        }

        Post(StopAll);
        var deadline = _settings.GracefulShutdownTimeout + DrainKillMargin;
        try
        {
            await _allExited.Task.WaitAsync(deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            Post(() =>
            {
                foreach (var worker in _workers)
                {
                    Kill(worker, "stopped", "still running when the graceful shutdown timeout ran out");
                }
            });
            await _allExited.Task.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (_loop is null)
        {
            return;
        }

        await _shutdown.CancelAsync().ConfigureAwait(false);
        _events.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        DeleteLockFile();
    }

    public void Dispose()
    {
        foreach (var registration in _signals)
        {
            registration.Dispose();
        }

        _shutdown.Dispose();
        _exits?.Dispose();
    }

    private void Post(Action action) => _events.Writer.TryWrite(action);

    private async Task RunLoopAsync()
    {
        Post(Reconcile);
        await foreach (var action in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                // The supervisor must outlive any one bad event.
                AcceptStrategyLog.SupervisorEventFailed(_logger, e);
            }
        }
    }

    private async Task TickAsync()
    {
        try
        {
            while (true)
            {
                var interval = _steady ? SteadyTickMilliseconds : BusyTickMilliseconds;
                var plannedAt = Stopwatch.GetTimestamp() + (interval * Stopwatch.Frequency / 1000);
                await Task.Delay(interval, _shutdown.Token).ConfigureAwait(false);
                Post(() => OnTick(plannedAt));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void OnTick(long plannedAt)
    {
        var now = Stopwatch.GetTimestamp();
        var late = Stopwatch.GetElapsedTime(plannedAt, now);
        if (late > PauseThreshold)
        {
            AcceptStrategyLog.SupervisorPaused(_logger, (long)late.TotalMilliseconds);
            var shift = now - plannedAt;
            foreach (var worker in _workers)
            {
                worker.LastHeartbeat += shift;
                worker.StartedAt += shift;
                worker.DrainStartedAt += shift;
            }
        }

        foreach (var worker in _workers.ToArray())
        {
            if (worker.Killed)
            {
                continue;
            }

            switch (worker.State)
            {
                case WorkerState.Starting when Stopwatch.GetElapsedTime(worker.StartedAt, now) > _settings.WorkerStartTimeout:
                    Kill(worker, "failed_to_start", $"not ready within the start timeout of {_settings.WorkerStartTimeout}");
                    break;
                case WorkerState.Standby or WorkerState.Active
                    when _settings.HangTimeout > TimeSpan.Zero && Stopwatch.GetElapsedTime(worker.LastHeartbeat, now) > _settings.HangTimeout:
                    Kill(worker, "hung", $"no heartbeat for {Stopwatch.GetElapsedTime(worker.LastHeartbeat, now).TotalSeconds:0.0} s (hang timeout {_settings.HangTimeout})");
                    break;
                case WorkerState.Draining when Stopwatch.GetElapsedTime(worker.DrainStartedAt, now) > _settings.GracefulShutdownTimeout + DrainKillMargin:
                    Kill(worker, worker.ExitReason!, $"still draining after the graceful shutdown timeout of {_settings.GracefulShutdownTimeout}");
                    break;
            }
        }

        Reconcile();
        _steady = !_stopping && _reloadQueue.Count == 0 && _workers.Count == _slots.Count && _workers.TrueForAll(w => w.State == WorkerState.Active);
    }

    /// <summary>Brings every slot towards one accepting worker, starting replacements and promoting standbys.</summary>
    private void Reconcile()
    {
        if (_stopping)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();

        // A slot removed (SIGTTOU, or a smaller Workers on SIGHUP) while queued for reload has nothing left to reload.
        while (_reloadQueue.TryPeek(out var removed) && removed.Removed)
        {
            _reloadQueue.Dequeue();
        }

        if (_reloadQueue.TryPeek(out var reloading) && !reloading.ReloadRequested)
        {
            reloading.ReloadRequested = true;
        }

        foreach (var slot in _slots.ToArray())
        {
            if (slot.Removed)
            {
                continue;
            }

            var next = slot.Next;
            if (next is { State: WorkerState.Standby })
            {
                var active = slot.Active;
                if (active is null || active.BudgetReached || slot.ReloadRequested)
                {
                    Promote(slot);
                }

                continue;
            }

            if (next is not null)
            {
                continue; // starting
            }

            if (slot.Active is null)
            {
                if (now >= slot.NextSpawnAt && SpawnAllowed(now))
                {
                    Spawn(slot, slot.EmptyReason);
                }
            }
            else if ((slot.ReloadRequested || NearBudget(slot.Active)) && now >= slot.NextSpawnAt && SpawnAllowed(now))
            {
                // A replacement that failed to start waits out its back-off like any other; the active worker serves on.
                if (!slot.ReloadRequested && !DrainingCapAllows(slot))
                {
                    continue;
                }

                Spawn(slot, slot.ReloadRequested ? "reload" : "recycle");
            }
        }

        if (!_allActive.Task.IsCompleted && _slots.All(s => s.Removed || s.Active is not null))
        {
            _allActive.TrySetResult();
        }
    }

    /// <summary>
    /// Whether the slot may start a recycle replacement: not while <see cref="MaxDrainingPerSlot"/> of its earlier
    /// workers still drain. Any client can spend budgets; without a cap, clients that hold requests open on every
    /// old worker would make the group grow without bound. Past the cap the active worker serves past its budget.
    /// </summary>
    private bool DrainingCapAllows(WorkerSlot slot)
    {
        var draining = _workers.Count(w => w.Slot == slot && w.State == WorkerState.Draining);
        if (draining < MaxDrainingPerSlot)
        {
            slot.RecycleDeferred = false;
            return true;
        }

        if (!slot.RecycleDeferred && slot.Active!.BudgetReached)
        {
            slot.RecycleDeferred = true;
            AcceptStrategyLog.RecycleDeferred(_logger, slot.Active.Pid, slot.Index, draining);
        }

        return false;
    }

    private bool NearBudget(SupervisedWorker worker)
    {
        if (worker.Budget == 0)
        {
            return false;
        }

        // Start the replacement so that it is ready about when the budget runs out.
        var remaining = worker.Budget - worker.Requests;
        return remaining <= worker.RequestRate * _startupSeconds * ReplacementLeadFactor + 1;
    }

    private bool SpawnAllowed(long now) =>
        _settings.SpawnInterval == TimeSpan.Zero || _lastSpawnAt == 0 || !_allActive.Task.IsCompleted
        || Stopwatch.GetElapsedTime(_lastSpawnAt, now) >= _settings.SpawnInterval;

    private void Spawn(WorkerSlot slot, string reason)
    {
        var generation = ++slot.Generations;
        var budget = DrawBudget();
        ControlChannel? supervisorEnd = null;
        ControlChannel? workerEnd = null;
        int pid;
        try
        {
            // Inside the try: out of descriptors, this fails like the spawn itself and backs off.
            (supervisorEnd, workerEnd) = ControlChannel.CreatePair();
            var inherited = new List<int> { workerEnd.Fd };
            var lockIndex = _lockFd >= 0 ? 1 : 0;
            if (_lockFd >= 0)
            {
                inherited.Add(_lockFd);
            }

            var perEndpoint = new List<(string Endpoint, int[] Fds)>();
            foreach (var endpoint in _endpoints)
            {
                var fds = endpoint.FdsFor(slot.Index);
                perEndpoint.Add((endpoint.Requested, fds));
                inherited.AddRange(fds);
            }

            pid = WorkerSpawner.Spawn(inherited, targets =>
            {
                // targets[i] is the number inherited[i] gets in the worker.
                var mapped = new List<(string, int[])>();
                var next = 1 + lockIndex;
                foreach (var (endpoint, fds) in perEndpoint)
                {
                    mapped.Add((endpoint, [.. targets.Skip(next).Take(fds.Length)]));
                    next += fds.Length;
                }

                return WorkerSpawner.CurrentEnvironment(
                [
                    new(WorkerEnvironment.WorkerVariable, WorkerEnvironment.Format(slot.Index, generation, budget, targets[0], _settings.Strategy, lockIndex > 0 ? targets[1] : null)),
                    new(WorkerEnvironment.ListenFdsVariable, WorkerEnvironment.FormatListenFds(mapped)),
                ]);
            });
        }
        catch (Exception e)
        {
            supervisorEnd?.Dispose();
            workerEnd?.Dispose();
            AcceptStrategyLog.WorkerSpawnFailed(_logger, slot.Index, e);
            Backoff(slot);
            return;
        }
        finally
        {
            // The worker has its own copy now.
            workerEnd?.Dispose();
        }

        _lastSpawnAt = Stopwatch.GetTimestamp();
        WorkerProcess process;
        try
        {
            process = WorkerProcess.Open(pid);
        }
        catch (IOException e)
        {
            // Not reaped yet, so the pid is still this child's.
            _ = Libc.Kill(pid, Libc.SIGKILL);
            unsafe
            {
                _ = Libc.WaitPid(pid, null, 0);
            }

            supervisorEnd!.Dispose();
            AcceptStrategyLog.WorkerSpawnFailed(_logger, slot.Index, e);
            Backoff(slot);
            return;
        }

        var worker = new SupervisedWorker(process, slot, generation, budget, supervisorEnd!);
        slot.Next = worker;
        _workers.Add(worker);
        _alive = _workers.Count;
        AcceptStrategyLog.WorkerStarted(_logger, pid, slot.Index, generation, reason, budget);

        _ = Task.Run(() => ReceiveAsync(worker));
        _exits!.Watch(process, status => _ = PostExitAsync(worker, status));
    }

    private long DrawBudget()
    {
        var max = _settings.MaxRequestsPerWorker;
        if (max == 0)
        {
            return 0;
        }

        var min = _settings.MinRequestsPerWorker > 0 ? _settings.MinRequestsPerWorker : Math.Max(1, max * 9 / 10);
        return Random.Shared.NextInt64(min, (long)max + 1);
    }

    private async Task ReceiveAsync(SupervisedWorker worker)
    {
        try
        {
            while (await worker.Control.ReceiveAsync(_shutdown.Token).ConfigureAwait(false) is { } message)
            {
                Post(() => OnMessage(worker, message));
            }
        }
        finally
        {
            worker.MessagesRead.TrySetResult();
        }
    }

    private async Task PostExitAsync(SupervisedWorker worker, int status)
    {
        // The worker's last counts were sent just before it exited: post them before the exit that logs them. Its end of
        // the control socket closed with it (bounded: a child forked without exec could still hold it).
        await Task.WhenAny(worker.MessagesRead.Task, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        Post(() => OnExited(worker, status));
    }

    private void OnMessage(SupervisedWorker worker, string message)
    {
        var now = Stopwatch.GetTimestamp();
        var interval = Stopwatch.GetElapsedTime(worker.LastHeartbeat, now).TotalSeconds;
        worker.LastHeartbeat = now;

        if (message == "ready")
        {
            if (worker.State == WorkerState.Starting)
            {
                worker.State = WorkerState.Standby;
                var startup = Stopwatch.GetElapsedTime(worker.StartedAt, now);
                _startupSeconds = _startupSeconds * 0.5 + startup.TotalSeconds * 0.5;
                worker.Slot.Failures = 0;
                AcceptStrategyLog.WorkerReady(_logger, worker.Pid, worker.Slot.Index, worker.Generation, (long)startup.TotalMilliseconds);
            }
        }
        else if (message.StartsWith("h ", StringComparison.Ordinal))
        {
            var parts = message.Split(' ');
            if (parts.Length == 3 && long.TryParse(parts[1], out var requests) && long.TryParse(parts[2], out var connections))
            {
                var served = requests - worker.Requests;
                _metrics.WorkerServed(worker.Slot.Index, served, connections - worker.Connections);
                if (interval > 0 && worker.State == WorkerState.Active)
                {
                    worker.RequestRate = worker.RequestRate * 0.7 + served / interval * 0.3;
                }

                worker.Requests = requests;
                worker.Connections = connections;
            }
        }
        else if (message.StartsWith("budget ", StringComparison.Ordinal) && long.TryParse(message.AsSpan(7), out var spent))
        {
            worker.Requests = Math.Max(worker.Requests, spent);
        }

        Reconcile();
    }

    /// <summary>The standby of <paramref name="slot"/> starts accepting; only then does its predecessor drain.</summary>
    private void Promote(WorkerSlot slot)
    {
        var next = slot.Next!;
        var previous = slot.Active;
        next.State = WorkerState.Active;
        next.Control.TrySend("accept");
        slot.Active = next;
        slot.Next = null;

        if (previous is not null)
        {
            var reason = slot.ReloadRequested ? "reload" : "recycled";
            Drain(previous, reason);
        }

        if (slot.ReloadRequested)
        {
            slot.ReloadRequested = false;
            if (_reloadQueue.TryPeek(out var head) && head == slot)
            {
                _reloadQueue.Dequeue();
            }
        }
    }

    private static void Drain(SupervisedWorker worker, string reason)
    {
        worker.ExitReason = reason;
        worker.State = WorkerState.Draining;
        worker.DrainStartedAt = Stopwatch.GetTimestamp();
        if (!worker.Control.TrySend("drain " + reason))
        {
            // Its control socket is gone, so it is exiting or dead; make sure.
            _ = worker.Process.TrySignal(Libc.SIGTERM);
        }
    }

    private void Kill(SupervisedWorker worker, string reason, string detail)
    {
        worker.ExitReason = reason;
        worker.Killed = true;
        AcceptStrategyLog.WorkerKilled(_logger, worker.Pid, worker.Slot.Index, worker.Generation, $"{reason}: {detail}");
        _ = worker.Process.TrySignal(Libc.SIGKILL);
    }

    private void OnExited(SupervisedWorker worker, int status)
    {
        _workers.Remove(worker);
        _alive = _workers.Count;
        worker.Control.Dispose();

        // Reaped: from here on a signal to this worker fails instead of reaching whoever reuses its pid.
        worker.Process.Dispose();

        var slot = worker.Slot;
        var wasStarting = worker.State == WorkerState.Starting;
        // Exit code 0 unasked: the worker was stopped from outside (a terminal's SIGINT reaches the whole group).
        var reason = worker.ExitReason ?? (wasStarting ? "failed_to_start" : status == 0 ? "exited" : "crashed");
        var expected = reason is "recycled" or "reload" or "scaled" or "stopped" or "superseded";
        var statusText = SupervisedWorker.DescribeStatus(status);
        AcceptStrategyLog.WorkerExited(
            _logger, expected ? LogLevel.Information : LogLevel.Warning, worker.Pid, slot.Index, worker.Generation, reason, statusText, worker.Requests);
        if (reason != "stopped")
        {
            _metrics.WorkerRestarted(reason);
        }

        if (slot.Active == worker)
        {
            slot.Active = null;
            slot.EmptyReason = "respawn";
        }

        if (slot.Next == worker)
        {
            slot.Next = null;
        }

        if (!_stopping && !slot.Removed && reason == "failed_to_start")
        {
            Backoff(slot);
        }

        if (slot.Removed && slot.Active is null && slot.Next is null)
        {
            _slots.Remove(slot);
        }

        if (_stopping && _workers.Count == 0)
        {
            _allExited.TrySetResult();
        }

        Reconcile();
    }

    private void Backoff(WorkerSlot slot)
    {
        slot.Failures++;
        var ticks = _settings.RespawnBackoff.Ticks * Math.Pow(2, Math.Min(slot.Failures - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(ticks, _settings.MaxRespawnBackoff.Ticks));
        slot.NextSpawnAt = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
        slot.EmptyReason = "respawn";
        AcceptStrategyLog.WorkerRespawnDelayed(_logger, slot.Index, slot.Failures, (long)delay.TotalMilliseconds);
    }

    private void OnSignal(string signal)
    {
        if (_stopping)
        {
            return;
        }

        var live = _slots.Count(s => !s.Removed);
        switch (signal)
        {
            case "SIGHUP":
                Reload();
                break;
            case "SIGTTIN":
                AddSlot();
                AcceptStrategyLog.SignalReceived(_logger, signal, $"workers {live} -> {live + 1}");
                break;
            case "SIGTTOU" when live <= 1:
                AcceptStrategyLog.SignalReceived(_logger, signal, "ignored: one worker is the minimum");
                break;
            case "SIGTTOU":
                RemoveSlot();
                AcceptStrategyLog.SignalReceived(_logger, signal, $"workers {live} -> {live - 1}");
                break;
        }

        Reconcile();
    }

    /// <summary>
    /// SIGHUP: re-reads the configuration, then replaces every worker one slot at a time. Everything started before
    /// the signal goes: a replacement already starting or standing by runs the old code and configuration, so it is
    /// killed (it has accepted nothing) and started anew.
    /// </summary>
    private void Reload()
    {
        if (!TryRereadSettings(out var workers))
        {
            return;
        }

        foreach (var slot in _slots.Where(s => s.Next is not null))
        {
            var next = slot.Next!;
            slot.Next = null;
            Kill(next, "superseded", "started before the reload signal");
        }

        var target = workers ?? _slots.Count(s => !s.Removed);
        while (_slots.Count(s => !s.Removed) > Math.Max(1, target))
        {
            RemoveSlot();
        }

        var live = _slots.Where(s => !s.Removed).ToList();
        foreach (var slot in live.Where(s => !_reloadQueue.Contains(s)))
        {
            _reloadQueue.Enqueue(slot);
        }

        // New slots start workers after the signal anyway: nothing to reload there.
        while (_slots.Count(s => !s.Removed) < target)
        {
            AddSlot();
        }

        AcceptStrategyLog.SignalReceived(_logger, "SIGHUP", $"replacing {live.Count} worker(s) one at a time{(target != live.Count ? $", {target - live.Count:+#;-#} new" : "")}");
    }

    /// <summary>
    /// Reloads the configuration and takes what a running supervisor can change. <paramref name="workers"/> is the new
    /// worker count when the configured one changed (so SIGTTIN/SIGTTOU adjustments survive a reload that did not
    /// touch it). An invalid configuration changes nothing.
    /// </summary>
    private bool TryRereadSettings(out int? workers)
    {
        workers = null;
        (_configuration as IConfigurationRoot)?.Reload();
        AcceptStrategyOptions fresh;
        try
        {
            fresh = _optionsFactory.Create(Options.DefaultName);
        }
        catch (OptionsValidationException e)
        {
            AcceptStrategyLog.ReloadRejected(_logger, string.Join(" ", e.Failures));
            return false;
        }

        // The sockets were made for these; the workers inherit what the supervisor bound.
        fresh.Strategy = KeepForRestart(nameof(fresh.Strategy), _settings.Strategy, fresh.Strategy);
        fresh.Acceptors = KeepForRestart(nameof(fresh.Acceptors), _settings.Acceptors, fresh.Acceptors);
        fresh.DeferAccept = KeepForRestart(nameof(fresh.DeferAccept), _settings.DeferAccept, fresh.DeferAccept);
        if (fresh.Workers == 0)
        {
            KeepForRestart(nameof(fresh.Workers), _configuredWorkers, 0);
            fresh.Workers = _configuredWorkers;
        }

        var changes = new List<string>();
        Compare(changes, nameof(fresh.Workers), _configuredWorkers, fresh.Workers);
        Compare(changes, nameof(fresh.MaxRequestsPerWorker), _settings.MaxRequestsPerWorker, fresh.MaxRequestsPerWorker);
        Compare(changes, nameof(fresh.MinRequestsPerWorker), _settings.MinRequestsPerWorker, fresh.MinRequestsPerWorker);
        Compare(changes, nameof(fresh.SpawnInterval), _settings.SpawnInterval, fresh.SpawnInterval);
        Compare(changes, nameof(fresh.RespawnBackoff), _settings.RespawnBackoff, fresh.RespawnBackoff);
        Compare(changes, nameof(fresh.MaxRespawnBackoff), _settings.MaxRespawnBackoff, fresh.MaxRespawnBackoff);
        Compare(changes, nameof(fresh.GracefulShutdownTimeout), _settings.GracefulShutdownTimeout, fresh.GracefulShutdownTimeout);
        Compare(changes, nameof(fresh.WorkerStartTimeout), _settings.WorkerStartTimeout, fresh.WorkerStartTimeout);
        Compare(changes, nameof(fresh.HangTimeout), _settings.HangTimeout, fresh.HangTimeout);
        Compare(changes, nameof(fresh.WarmupPath), _settings.WarmupPath, fresh.WarmupPath);

        if (fresh.Workers != _configuredWorkers)
        {
            workers = fresh.Workers;
        }

        _configuredWorkers = fresh.Workers;
        _settings = fresh;
        ExtendShutdownTimeout();
        AcceptStrategyLog.ConfigurationReloaded(_logger, changes.Count == 0 ? "no supervisor setting changed" : string.Join(", ", changes));
        return true;
    }

    private T KeepForRestart<T>(string option, T old, T @new)
    {
        if (!EqualityComparer<T>.Default.Equals(old, @new))
        {
            AcceptStrategyLog.ReloadNeedsRestart(_logger, option, Convert.ToString(old, CultureInfo.InvariantCulture) ?? "", Convert.ToString(@new, CultureInfo.InvariantCulture) ?? "");
        }

        return old;
    }

    private static void Compare<T>(List<string> changes, string option, T old, T @new)
    {
        if (!EqualityComparer<T>.Default.Equals(old, @new))
        {
            changes.Add(string.Create(CultureInfo.InvariantCulture, $"{option} {old} -> {@new}"));
        }
    }

    /// <summary>Live slots are always 0..n-1 (removal takes the highest), so the new one is n.</summary>
    private void AddSlot()
    {
        var live = _slots.Count(s => !s.Removed);
        _slots.Add(new WorkerSlot(live) { EmptyReason = "scaled" });
    }

    /// <summary>Removes the highest slot, so ReusePort socket groups stay contiguous.</summary>
    private void RemoveSlot()
    {
        var removed = _slots.Where(s => !s.Removed).MaxBy(s => s.Index)!;
        removed.Removed = true;
        if (removed.Next is { } next)
        {
            removed.Next = null;
            Kill(next, "scaled", "its slot was removed before it took over");
        }

        // ReusePort: the kernel keeps hashing connections to the slot's sockets while any process holds them.
        // Dropping the supervisor's copies now leaves only the worker's, which its acceptors close the moment
        // they stop, so the window in which a connection can land in a queue nobody accepts from is that instant.
        foreach (var endpoint in _endpoints)
        {
            endpoint.ReleaseSlot(removed.Index);
        }

        if (removed.Active is { } active)
        {
            Drain(active, "scaled");
        }

        if (removed.Active is null && removed.Next is null)
        {
            _slots.Remove(removed);
        }
    }

    private void StopAll()
    {
        _stopping = true;
        foreach (var worker in _workers)
        {
            if (worker.State is WorkerState.Starting or WorkerState.Standby)
            {
                Kill(worker, "stopped", "the supervisor is stopping");
            }
            else if (worker.State != WorkerState.Draining)
            {
                Drain(worker, "stopped");
            }
        }

        // As nginx, gunicorn and HAProxy do: a graceful stop closes the listening sockets at once, so new clients are
        // refused instead of queueing where nobody will accept them. The draining workers close their own copies as
        // their acceptors stop; their open connections finish.
        AcceptStrategyLog.SupervisorStopping(_logger, Environment.ProcessId, _workers.Count);
        foreach (var endpoint in _endpoints)
        {
            endpoint.Dispose();
        }

        if (_workers.Count == 0)
        {
            _allExited.TrySetResult();
        }
    }

    private unsafe void CreateLockFile()
    {
        // A fresh 0700 directory with an unpredictable name: no other user can pre-create or hold the lock file.
        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        var parent = !string.IsNullOrEmpty(runtime) && Directory.Exists(runtime) ? runtime : Path.GetTempPath();
        var template = Encoding.UTF8.GetBytes(Path.Combine(parent, "kestrel-accept-XXXXXX") + "\0");
        fixed (byte* p = template)
        {
            if (Libc.Mkdtemp(p) is null)
            {
                throw new IOException($"Cannot create a private directory for the accept lock in {parent}: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
            }
        }

        var directory = Encoding.UTF8.GetString(template, 0, template.Length - 1);
        var path = Path.Combine(directory, "accept.lock");
        try
        {
            _lockFd = Libc.Open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, Convert.ToInt32("600", 8));
            if (_lockFd < 0)
            {
                throw new IOException($"Cannot create the accept lock file {path}: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
            }
        }
        finally
        {
            // Unlinked at once: workers inherit the open file, so there is no path for a tmp cleaner to remove and
            // nothing left behind by a kill -9.
            File.Delete(path);
            Directory.Delete(directory);
        }
    }

    private void DeleteLockFile()
    {
        var fd = Interlocked.Exchange(ref _lockFd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }
}
