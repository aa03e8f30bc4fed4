using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Processes;
using Kestrel.AcceptStrategies.Supervisor.Status;
using Kestrel.AcceptStrategies.Supervisor.Systemd;
using Kestrel.AcceptStrategies.Supervisor.Upgrade;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The supervisor's place in the host (<c>Workers &gt; 0</c>, in the process the user started): once Kestrel has
/// bound every endpoint it starts the <see cref="SupervisorLoop"/>, turns SIGHUP, SIGTTIN and SIGTTOU into its
/// events, tells a service manager (<c>NOTIFY_SOCKET</c>) when the group serves and stops, and stops the workers
/// gracefully before Kestrel stops.
/// </summary>
internal sealed class WorkerSupervisor(
    WorkerProcessInfo process,
    IOptions<WorkerProcessOptions> options,
    IOptionsFactory<WorkerProcessOptions> optionsFactory,
    IOptions<AcceptStrategyOptions> transportOptions,
    IOptionsFactory<AcceptStrategyOptions> transportFactory,
    IConfiguration configuration,
    SupervisorSockets sockets,
    InheritedListeners inherited,
    IHostApplicationLifetime lifetime,
    AcceptStrategyMetrics metrics,
    ILoggerFactory loggerFactory) : IHostedLifecycleService, IDisposable
{
    // Descriptors a worker should have left for connections beyond what it starts with, for the start-up check.
    private const int ConnectionsHeadroom = 64;

    // A successor has its own start-up to do (a JIT process compiles its code first) before its workers' WorkerStartTimeout.
    private static readonly TimeSpan SuccessorStartMargin = TimeSpan.FromSeconds(30);

    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.SupervisorCategory);
    private readonly List<PosixSignalRegistration> _signals = [];
    private SupervisorLoop? _loop;
    private StatusServer? _status;
    private ServiceNotifier? _notifier;
    private WorkerProcessOptions _settings = null!;

    // A successor supervisor (SIGUSR2): none, starting, serving (this one is on its way out), or refused (stopping).
    private const int UpgradeIdle = 0, UpgradeStarting = 1, UpgradeHandedOver = 2, UpgradeRefused = 3;
    private int _upgrade;

    // The successor while it starts (a pidfd, safe once it is reaped), under its lock: a stop signals it at once. The
    // task completes when UpgradeAsync is done with it, so this supervisor does not exit leaving it behind.
    private readonly Lock _successorGate = new();
    private WorkerProcess? _successor;
    private Task _upgrading = Task.CompletedTask;

    // A successor's status endpoint, bound once its predecessor exits; cancelled when this supervisor stops.
    private readonly CancellationTokenSource _stopping = new();
    private Task _deferredStatus = Task.CompletedTask;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>After every hosted service started, so Kestrel has bound every endpoint: start the workers.</summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        if (process.Role != WorkerProcessRole.Supervisor)
        {
            return;
        }

        _settings = options.Value;
        var transport = transportOptions.Value;
        var endpoints = sockets.Snapshot();
        if (endpoints.Count == 0)
        {
            AcceptStrategyLog.NoEndpoints(_logger, _settings.Workers);
            throw new InvalidOperationException(
                $"WorkerProcesses:Workers = {_settings.Workers}, but Kestrel bound no endpoint to hand to the workers.");
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Worker processes need Linux.");
        }

        // Fails once, here, naming what is missing (Linux < 5.3, a seccomp profile without pidfd_open), instead of every spawn.
        WorkerProcess.Open(Environment.ProcessId).Dispose();
        CheckDescriptorLimit(endpoints);
        _notifier = ServiceNotifier.FromEnvironment(_logger);
        _loop = new SupervisorLoop(
            _settings,
            endpoints,
            new WorkerLauncher(endpoints, transport.Strategy, transport.Acceptors, DecideRuntimeSettings(_settings.RuntimeProfile)),
            new SettingsReloader(configuration, transportFactory, optionsFactory, transport, _logger),
            metrics,
            _notifier,
            _logger,
            TimeProvider.System);
        _loop.SettingsChanged += settings => _settings = settings;

        // Bound before any worker starts, so a status endpoint that cannot be served fails start-up with nothing to undo.
        // A successor whose predecessor still holds the same address binds it once the predecessor has exited.
        if (!string.IsNullOrEmpty(_settings.StatusEndpoint) && StatusEndpointAddress.TryParse(_settings.StatusEndpoint, out var statusAddress, out _))
        {
            var from = inherited.Predecessor;
            var predecessor = from > 0 ? OpenPredecessor(from) : null;
            try
            {
                _status = StatusServer.Start(statusAddress!, endpoints, SnapshotAsync, _logger, fatal: predecessor is null);
                predecessor?.Dispose();
            }
            catch (InvalidOperationException) when (predecessor is not null && predecessor.TrySignal(0))
            {
                AcceptStrategyLog.StatusEndpointDeferred(_logger, statusAddress!.Display(), from);
                _deferredStatus = BindStatusAfterAsync(predecessor, statusAddress!, endpoints);
            }
        }

        metrics.ObserveWorkersAlive(() => _loop.Alive);
        foreach (var (signal, kind) in new[] { (PosixSignal.SIGHUP, SupervisorSignal.Reload), (PosixSignal.SIGTTIN, SupervisorSignal.ScaleUp), (PosixSignal.SIGTTOU, SupervisorSignal.ScaleDown) })
        {
            _signals.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                _loop.Post(new SupervisorEvent.Signal(kind));
            }));
        }

        _signals.Add(PosixSignalRegistration.Create((PosixSignal)Libc.SIGUSR2, context =>
        {
            context.Cancel = true;
            if (Interlocked.CompareExchange(ref _upgrade, UpgradeStarting, UpgradeIdle) != UpgradeIdle)
            {
                AcceptStrategyLog.SignalReceived(_logger, "SIGUSR2", "ignored: a new supervisor is already starting, or this one is stopping");
                return;
            }

            Volatile.Write(ref _upgrading, UpgradeAsync());
        }));

        AcceptStrategyLog.SupervisorStarted(_logger, Environment.ProcessId, _settings.Workers, transport.Strategy);
        _loop.Start();

        // Application started means serving: wait (bounded) for every slot to accept. A slot whose worker fails keeps
        // retrying with back-off; the supervisor does not give up on it.
        var allActive = false;
        try
        {
            await _loop.AllActive.WaitAsync(_settings.WorkerStartTimeout, cancellationToken).ConfigureAwait(false);
            allActive = true;
        }
        catch (TimeoutException)
        {
            // Logged per worker by the loop.
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped while starting (SIGTERM in the first moments, or during a slow warm-up): not an error. The host
            // goes on to StoppingAsync, which stops the workers already started.
            return;
        }

        // Ready once every slot accepts, or once the start timeout passed with the slots that could (the others retry
        // with back-off): the group serves either way, as Kestrel's "Application started" says next. A successor
        // tells its predecessor, which tells the service manager with this process's pid; but only once every slot
        // accepts, since its predecessor's workers serve while it does not, and leave once it says so.
        if (!inherited.IsUpgrade)
        {
            _notifier?.Ready(_loop.Describe());
        }
        else if (allActive)
        {
            inherited.Ready(_loop.Alive);
            foreach (var endpoint in endpoints)
            {
                endpoint.OwnAdoptedFile();
            }
        }
        else
        {
            AcceptStrategyLog.UpgradeFailed(_logger, "", $"not every worker slot accepted within WorkerStartTimeout ({_settings.WorkerStartTimeout}): this successor stops, and the previous supervisor serves on");
            lifetime.StopApplication();
        }
    }

    /// <summary>
    /// SIGUSR2: a successor supervisor from the executable on disk now, with every listening socket handed over; once
    /// its workers serve, this supervisor stops as on SIGTERM (its workers drain, no connection is dropped), else it
    /// takes its sockets back and goes on serving.
    /// </summary>
    private async Task UpgradeAsync()
    {
        // Off the signal handler's thread: starting the successor spawns a process.
        await Task.Yield();
        if (Environment.GetEnvironmentVariable(SocketActivation.EndpointsVariable) is not null)
        {
            // The successor would find its endpoints in no configuration: systemd passed them to this process only.
            AcceptStrategyLog.UpgradeFailed(_logger, "", "this supervisor serves sockets systemd passed (socket activation), which a successor cannot be given as such; restart the service instead");
            _ = Interlocked.CompareExchange(ref _upgrade, UpgradeIdle, UpgradeStarting);
            return;
        }

        int pid;
        try
        {
            (pid, var count, var outcome) = SuccessorLauncher.Start(sockets.Snapshot(), _settings.WorkerStartTimeout + SuccessorStartMargin);
            AcceptStrategyLog.UpgradeStarted(_logger, pid, Environment.ProcessPath ?? "?", count);

            // Opened while the successor is an unreaped child, so the pid is still its own.
            var successor = WorkerProcess.Open(pid);
            lock (_successorGate)
            {
                _successor = successor;
            }

            try
            {
                // A stop that came while the successor was being started did not see it: stop it now.
                if (Volatile.Read(ref _upgrade) == UpgradeRefused)
                {
                    _ = successor.TrySignal(Libc.SIGTERM);
                }

                if (await outcome.ConfigureAwait(false) is { } reason)
                {
                    TakeBack($" (pid {pid})", reason);
                    return;
                }
            }
            finally
            {
                lock (_successorGate)
                {
                    _successor = null;
                    successor.Dispose();
                }
            }
        }
        catch (Exception e)
        {
            TakeBack("", e.Message);
            return;
        }

        if (Interlocked.CompareExchange(ref _upgrade, UpgradeHandedOver, UpgradeStarting) != UpgradeStarting)
        {
            // Told to stop while the successor started: the stop wins, for both.
            AcceptStrategyLog.UpgradeFailed(_logger, $" (pid {pid})", "this supervisor was told to stop meanwhile, so the successor is stopped too");
            _ = Libc.Kill(pid, Libc.SIGTERM);
            return;
        }

        // From here on the successor serves: whatever fails below, this supervisor leaves and steers no more.
        foreach (var endpoint in sockets.Snapshot())
        {
            try
            {
                endpoint.LeaveFileToSuccessor();
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                AcceptStrategyLog.UpgradeFailed(_logger, $" (pid {pid})", $"{endpoint.Requested}: {e.Message}; its socket file may be removed as this supervisor exits");
            }
        }

        AcceptStrategyLog.UpgradeCompleted(_logger, pid, Environment.ProcessId, _loop!.Alive);
        _notifier?.MainPid(pid, $"supervisor {pid} took over from {Environment.ProcessId}");
        lifetime.StopApplication();

        // No successor serves: this supervisor steers its sockets again and takes the next SIGUSR2.
        void TakeBack(string successor, string reason)
        {
            AcceptStrategyLog.UpgradeFailed(_logger, successor, reason);
            _loop?.Post(new SupervisorEvent.TakeBack());
            _ = Interlocked.CompareExchange(ref _upgrade, UpgradeIdle, UpgradeStarting);
        }
    }

    private static WorkerProcess? OpenPredecessor(int pid)
    {
        try
        {
            return WorkerProcess.Open(pid);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Waits (on its pidfd) for the predecessor to exit, then binds the status endpoint it held; failing that, logs it.</summary>
    private async Task BindStatusAfterAsync(WorkerProcess predecessor, StatusEndpointAddress address, IReadOnlyList<SupervisedEndpoint> endpoints)
    {
        using (predecessor)
        {
            var exited = await Task.Factory.StartNew(
                () => WaitForExit(predecessor, _stopping.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            if (!exited)
            {
                return;
            }
        }

        try
        {
            // Read by StoppedAsync only after this task has ended.
            _status = StatusServer.Start(address, endpoints, SnapshotAsync, _logger, fatal: false);
        }
        catch (InvalidOperationException e)
        {
            AcceptStrategyLog.StatusEndpointLost(_logger, address.Display(), predecessor.Pid, e.InnerException?.Message ?? e.Message);
        }
    }

    /// <summary>True once the process has exited; false when stopping came first.</summary>
    private static unsafe bool WaitForExit(WorkerProcess process, CancellationToken stopping)
    {
        var poll = new PollFd { Fd = process.Fd, Events = Libc.POLLIN };
        while (!stopping.IsCancellationRequested)
        {
            var ready = Libc.Poll(&poll, 1, 200);
            if (ready != 0 && (ready > 0 || Marshal.GetLastPInvokeError() != Libc.EINTR))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Before Kestrel stops (and closes the supervisor's copies of the sockets): drain every worker.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_loop is null)
        {
            return;
        }

        // A SIGUSR2 from here on is refused, and a successor still starting is stopped now (SIGTERM: it drains its own
        // workers) and waited for below. After a hand-over the service goes on in the successor: nothing to tell the
        // service manager.
        var upgrade = Volatile.Read(ref _upgrade);
        while (upgrade is UpgradeIdle or UpgradeStarting && Interlocked.CompareExchange(ref _upgrade, UpgradeRefused, upgrade) is var seen && seen != upgrade)
        {
            upgrade = seen;
        }

        if (upgrade == UpgradeStarting)
        {
            lock (_successorGate)
            {
                _ = _successor?.TrySignal(Libc.SIGTERM);
            }
        }

        if (upgrade != UpgradeHandedOver)
        {
            _notifier?.Stopping($"stopping: draining {_loop.Alive} worker(s)");
        }

        _loop.Post(new SupervisorEvent.Stop());
        try
        {
            await _loop.AllExited.WaitAsync(_settings.GracefulShutdownTimeout + SlotPolicy.DrainKillMargin, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            _loop.Post(new SupervisorEvent.StopDeadline());
            try
            {
                await _loop.AllExited.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Killed with SIGKILL; the kernel reaps them once the supervisor exits.
            }
        }

        if (upgrade == UpgradeStarting)
        {
            // Until the stopped successor is reaped (bounded: its outcome waits at most this long, then kills it). Read
            // after the workers' drain, long after the signal handler that set it.
            try
            {
                await Volatile.Read(ref _upgrading).WaitAsync(_settings.WorkerStartTimeout + SuccessorStartMargin + TimeSpan.FromSeconds(15), CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                AcceptStrategyLog.UpgradeFailed(_logger, "", "the successor stopped with this supervisor had not exited in time; it may outlive it");
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _deferredStatus.ConfigureAwait(false);
        if (_status is not null)
        {
            await _status.DisposeAsync().ConfigureAwait(false);
            _status = null;
        }

        if (_loop is not null)
        {
            await _loop.DisposeAsync().ConfigureAwait(false);
        }

        _notifier?.Dispose();
    }

    /// <summary>
    /// Warns at start when the descriptor limit cannot fit the group: the supervisor holds, per worker slot, its
    /// listening sockets (ReusePort) and, for each of the slot's workers (two while one replaces the other), a control
    /// socket and a pidfd; a worker starts with about as many descriptors as the supervisor has now.
    /// </summary>
    private void CheckDescriptorLimit(IReadOnlyList<SupervisedEndpoint> endpoints)
    {
        var (soft, _) = DescriptorLimit.Read();
        var open = DescriptorLimit.OpenNow();
        var slots = Math.Max(_settings.Workers, _settings.MaxWorkers);
        var perSlot = 4 + endpoints.Sum(e => e.SocketsPerSlot);
        var needed = (ulong)(open + (slots * perSlot) + ConnectionsHeadroom);
        if (soft < needed)
        {
            AcceptStrategyLog.DescriptorLimitLow(
                _logger, DescriptorLimit.Describe(soft), open, needed, slots, perSlot, DescriptorLimit.Advice(needed));
        }
    }

    /// <summary>A snapshot taken on the loop (its state is the loop's alone), to be serialized by the status view.</summary>
    private async Task<StatusSnapshot> SnapshotAsync(CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<StatusSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop!.Post(new SupervisorEvent.StatusRequested(reply));
        return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private IReadOnlyList<KeyValuePair<string, string>> DecideRuntimeSettings(WorkerRuntimeProfile profile)
    {
        var (applied, kept) = WorkerRuntimeSettings.Decide(
            profile,
            WorkerRuntimeSettings.Tuned,
            Environment.GetEnvironmentVariables().Keys.Cast<string>(),
            AppContext.GetData);
        AcceptStrategyLog.WorkerRuntimeProfileApplied(
            _logger,
            profile,
            applied.Count == 0 ? "nothing added" : string.Join(", ", applied.Select(s => s.Key + "=" + s.Value)),
            kept.Count == 0 ? "none" : string.Join(", ", kept));
        return applied;
    }

    public void Dispose()
    {
        foreach (var registration in _signals)
        {
            registration.Dispose();
        }

        _status?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _notifier?.Dispose();
    }
}
