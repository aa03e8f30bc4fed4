using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// The worker's side of the supervisor protocol as a hosted service, registered in workers only: follows the
/// supervisor's messages (<c>accept</c> starts the listeners, <c>drain</c> drains), runs the heartbeat, warms up and
/// reports ready once the app has started, and drains when the supervisor is gone.
/// </summary>
internal sealed class WorkerAgent(
    WorkerControlClient control,
    WorkerListeners listeners,
    WorkerHeartbeat heartbeat,
    WorkerWarmup warmup,
    WorkerDrain drain,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggerFactory) : IHostedService, IDisposable
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.WorkerCategory);
    private readonly CancellationTokenSource _stopping = new();
    private readonly int _pid = Environment.ProcessId;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Worker processes need Linux.");
        }

        Observe(Task.Run(ReceiveAsync, CancellationToken.None), "the control loop", "it no longer hears the supervisor");
        Observe(Task.Run(() => heartbeat.RunAsync(_stopping.Token), CancellationToken.None), "the heartbeat", "the supervisor will take this worker for hung");
        lifetime.ApplicationStarted.Register(() => Observe(Task.Run(warmup.WarmUpAndReportReadyAsync), "the warm-up", "the supervisor was not told it is ready"));

        // The heartbeat can report a change late (a request's end with no request after it waits for the idle interval,
        // a quarter of the hang timeout), and this is the last word before the exit the supervisor logs with these counts.
        lifetime.ApplicationStopped.Register(heartbeat.SendCounts);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();

        // Kestrel (started last) has stopped by now: the requests it finished while stopping are counted.
        heartbeat.SendCounts();
        return Task.CompletedTask;
    }

    public void Dispose() => _stopping.Dispose();

    private async Task ReceiveAsync()
    {
        try
        {
            while (await control.ReceiveAsync().ConfigureAwait(false) is { } message)
            {
                if (message.Kind == ControlMessageKind.Accept)
                {
                    foreach (var listener in listeners.Snapshot())
                    {
                        listener.Start();
                    }
                }
                else if (message.Kind == ControlMessageKind.Drain)
                {
                    var reason = message.Reason.Name();
                    Observe(Task.Run(() => drain.DrainAsync(reason)), "the drain", "the host may not stop");
                }
            }
        }
        catch (Exception e)
        {
            // A worker that cannot follow its supervisor (or start accepting) is of no use: it drains and exits, and
            // the supervisor replaces it.
            AcceptStrategyLog.WorkerActivityFailed(_logger, _pid, "the control loop", "draining", e);
            await drain.DrainAsync("control loop failed").ConfigureAwait(false);
            return;
        }

        if (!_stopping.IsCancellationRequested)
        {
            AcceptStrategyLog.SupervisorLost(_logger, _pid);
            await drain.DrainAsync("supervisor gone").ConfigureAwait(false);
        }
    }

    /// <summary>Logs a fire-and-forget task's failure, so none goes unseen.</summary>
    private void Observe(Task task, string activity, string consequence) => task.ContinueWith(
        t => AcceptStrategyLog.WorkerActivityFailed(_logger, _pid, activity, consequence, t.Exception!.GetBaseException()),
        CancellationToken.None,
        TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
        TaskScheduler.Default);
}
