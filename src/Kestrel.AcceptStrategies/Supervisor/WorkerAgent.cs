using System.Diagnostics;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The worker's side of the supervisor protocol: warms up and reports ready, accepts when told, counts requests
/// against its budget, heart-beats, drains when told, and stops when the supervisor is gone.
/// </summary>
/// <remarks>
/// Messages to the supervisor: <c>ready</c>, <c>h REQUESTS CONNECTIONS</c> (every 100 ms while serving, from the thread pool, so a
/// starved worker falls silent), <c>budget REQUESTS</c>. From it: <c>accept</c>, <c>drain REASON</c>.
/// </remarks>
internal sealed class WorkerAgent : IHostedService, IDisposable
{
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(100);

    // A draining worker cuts its connections with no request in the app after this long: busy clients send their
    // next request within milliseconds and are told to go; one silent this long is idle, or slow on purpose.
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(1);

    private readonly AcceptStrategyProcess _process;
    private readonly IOptions<AcceptStrategyOptions> _options;
    private readonly WorkerListeners _listeners;
    private readonly IServiceProvider _services;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger _logger;
    private readonly HostOptions _hostOptions;
    private readonly CancellationTokenSource _stopping = new();
    private readonly int _pid = Environment.ProcessId;
    private ControlChannel? _control;
    private long _budget;
    private long _requests;
    private int _draining;
    private int _budgetReported;

    public WorkerAgent(
        AcceptStrategyProcess process,
        IOptions<AcceptStrategyOptions> options,
        WorkerListeners listeners,
        IServiceProvider services,
        IHostApplicationLifetime lifetime,
        IOptions<HostOptions> hostOptions,
        ILoggerFactory loggerFactory)
    {
        _hostOptions = hostOptions.Value;
        _process = process;
        _options = options;
        _listeners = listeners;
        _services = services;
        _lifetime = lifetime;
        _logger = loggerFactory.CreateLogger(AcceptStrategyLog.CategoryName);
    }

    /// <summary>Whether responses should carry <c>Connection: close</c>.</summary>
    public bool IsDraining => Volatile.Read(ref _draining) != 0;

    /// <summary>The connections this worker accepted and has not closed yet.</summary>
    public ConnectionCounter Connections => _listeners.Connections;

    /// <summary>Counts one request (keep-alive ones included); the one that spends the budget tells the supervisor.</summary>
    public void RequestStarted()
    {
        var count = Interlocked.Increment(ref _requests);
        if (count >= _budget && _budget > 0 && Interlocked.Exchange(ref _budgetReported, 1) == 0)
        {
            _control?.TrySend("budget " + count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var environment = WorkerEnvironment.Current;
        if (_process.Role != AcceptStrategyRole.Worker || environment is null)
        {
            return Task.CompletedTask;
        }

        _budget = environment.Budget;

        // Kestrel's graceful stop in a worker lasts at most the graceful timeout (the host reads this when it stops).
        _hostOptions.ShutdownTimeout = _options.Value.GracefulShutdownTimeout;
        _control = new ControlChannel(environment.ControlFd);

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Worker processes need Linux.");
        }

        Observe(Task.Run(ReceiveAsync, CancellationToken.None), "the control loop", "it no longer hears the supervisor");
        Observe(Task.Run(HeartbeatAsync, CancellationToken.None), "the heartbeat", "the supervisor will take this worker for hung");
        _lifetime.ApplicationStarted.Register(() => Observe(Task.Run(WarmUpAndReportReadyAsync), "the warm-up", "the supervisor was not told it is ready"));

        // The heartbeat reports changes up to a second late, and this is the last word before the exit the supervisor
        // logs with these counts.
        _lifetime.ApplicationStopped.Register(SendCounts);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();

        // Kestrel (started last) has stopped by now: the requests it finished while stopping are counted.
        SendCounts();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _control?.Dispose();
        _stopping.Dispose();
    }

    private async Task ReceiveAsync()
    {
        try
        {
            while (await _control!.ReceiveAsync(CancellationToken.None).ConfigureAwait(false) is { } message)
            {
                if (message == "accept")
                {
                    foreach (var listener in _listeners.Snapshot())
                    {
                        listener.Start();
                    }
                }
                else if (message.StartsWith("drain", StringComparison.Ordinal))
                {
                    var reason = message.Length > 6 ? message[6..] : "told to";
                    Observe(Task.Run(() => DrainAsync(reason)), "the drain", "the host may not stop");
                }
            }
        }
        catch (Exception e)
        {
            // A worker that cannot follow its supervisor (or start accepting) is of no use: it drains and exits, and
            // the supervisor replaces it.
            AcceptStrategyLog.WorkerActivityFailed(_logger, _pid, "the control loop", "draining", e);
            await DrainAsync("control loop failed").ConfigureAwait(false);
            return;
        }

        if (!_stopping.IsCancellationRequested)
        {
            AcceptStrategyLog.SupervisorLost(_logger, _pid);
            await DrainAsync("supervisor gone").ConfigureAwait(false);
        }
    }

    private async Task HeartbeatAsync()
    {
        // Every 100 ms while serving, so the supervisor's request counts (and so recycling) stay current; when nothing
        // changed, only often enough for the hang detector (a quarter of HangTimeout, at most 1 s), so an idle worker
        // sleeps.
        var hang = _options.Value.HangTimeout;
        var idleInterval = hang > TimeSpan.Zero
            ? TimeSpan.FromTicks(Math.Clamp(hang.Ticks / 4, HeartbeatInterval.Ticks, TimeSpan.TicksPerSecond))
            : TimeSpan.FromSeconds(1);
        string? last = null;
        try
        {
            while (true)
            {
                var message = CountsMessage();
                if (!_control!.TrySend(message))
                {
                    return;
                }

                var changed = message != last;
                last = message;
                await Task.Delay(changed ? HeartbeatInterval : idleInterval, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Logs a fire-and-forget task's failure, so none goes unseen.</summary>
    private void Observe(Task task, string activity, string consequence) => task.ContinueWith(
        t => AcceptStrategyLog.WorkerActivityFailed(_logger, _pid, activity, consequence, t.Exception!.GetBaseException()),
        CancellationToken.None,
        TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
        TaskScheduler.Default);

    private string CountsMessage() => FormattableString.Invariant($"h {Interlocked.Read(ref _requests)} {_listeners.Connections.Total}");

    private void SendCounts() => _control?.TrySend(CountsMessage());

    private async Task WarmUpAndReportReadyAsync()
    {
        var path = _options.Value.WarmupPath;
        var listeners = _listeners.Snapshot();
        try
        {
            if (!string.IsNullOrEmpty(path) && listeners.Count > 0)
            {
                var started = Stopwatch.GetTimestamp();
                var server = _services.GetService<IServer>();
                var statusCode = await WorkerWarmup.SendAsync(listeners[0], server, path, _options.Value.WorkerStartTimeout).ConfigureAwait(false);
                AcceptStrategyLog.WorkerWarmedUp(_logger, _pid, path, statusCode, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (Exception e)
        {
            // Best effort, whatever went wrong: a cold worker serves; one that never reports ready does not.
            AcceptStrategyLog.WorkerWarmupFailed(_logger, _pid, path ?? "", $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            // The warm-up is not the app's traffic.
            Interlocked.Exchange(ref _requests, 0);
            Interlocked.Exchange(ref _budgetReported, 0);
            _control!.TrySend("ready");
        }
    }

    /// <summary>Stops accepting, lets open connections finish with Connection: close, then stops the host (exit 0).</summary>
    private async Task DrainAsync(string reason)
    {
        if (Interlocked.Exchange(ref _draining, 1) != 0)
        {
            return;
        }

        try
        {
            var listeners = _listeners.Snapshot();
            await Task.WhenAll(listeners.Select(l => l.UnbindAsync().AsTask())).ConfigureAwait(false);
            AcceptStrategyLog.WorkerDraining(_logger, _pid, reason, Interlocked.Read(ref _requests), _listeners.Connections.Open);

            // Connections with a request in the app close once it is done (Connection: close, or GOAWAY for
            // HTTP/2, whose clients would otherwise keep this worker alive as long as they like); the others on
            // their next request (the middleware), or below when they stay idle.
            foreach (var connection in _listeners.Connections.Snapshot())
            {
                if (connection.HasRequestInApp)
                {
                    connection.RequestClose();
                }
            }

            // The grace: a busy client sends its next request within it and is told to go (Connection: close, GOAWAY).
            var graceEnds = Stopwatch.GetTimestamp() + (long)(DrainGrace.TotalSeconds * Stopwatch.Frequency);
            while (_listeners.Connections.Open > 0 && Stopwatch.GetTimestamp() < graceEnds)
            {
                await Task.Delay(20).ConfigureAwait(false);
            }

            // Then every connection with no request in the app goes: idle ones, silent ones and ones still sending
            // their request head, any of which a client could otherwise hold open until GracefulShutdownTimeout. An
            // HTTP/2 one gets GOAWAY instead: Kestrel closes it at once, and the client retries what it sent meanwhile.
            var cut = 0;
            foreach (var connection in _listeners.Connections.Snapshot())
            {
                if (connection.Multiplexed)
                {
                    connection.RequestClose();
                }
                else if (connection.CutIfNoRequestInApp())
                {
                    cut++;
                }
            }

            if (cut > 0)
            {
                AcceptStrategyLog.WorkerConnectionsCut(_logger, _pid, cut, (long)DrainGrace.TotalMilliseconds);
            }
        }
        catch (Exception e)
        {
            AcceptStrategyLog.WorkerActivityFailed(_logger, _pid, "the drain", "stopping the host anyway", e);
        }
        finally
        {
            // Kestrel's own graceful stop: idle connections close, requests still running finish (within the host's
            // shutdown timeout, which is GracefulShutdownTimeout in a worker).
            SendCounts();
            _lifetime.StopApplication();
        }
    }
}
