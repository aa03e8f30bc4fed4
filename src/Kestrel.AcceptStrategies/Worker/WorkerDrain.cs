using Kestrel.AcceptStrategies.Internal;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>Stops accepting, lets open connections finish with Connection: close, then stops the host (exit 0).</summary>
internal sealed class WorkerDrain(
    WorkerListeners listeners, WorkerRequests requests, WorkerHeartbeat heartbeat, IHostApplicationLifetime lifetime, ILoggerFactory loggerFactory)
{
    // A draining worker cuts its connections with no request in the app after this long: busy clients send their
    // next request within milliseconds and are told to go; one silent this long is idle, or slow on purpose.
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.WorkerCategory);
    private readonly int _pid = Environment.ProcessId;
    private int _draining;

    /// <summary>The grace's clock: the system's, a fake one in tests (not DI's, which is the app's).</summary>
    internal TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Whether responses should carry <c>Connection: close</c>.</summary>
    public bool IsDraining => Volatile.Read(ref _draining) != 0;

    /// <summary>Drains once; later calls return at once.</summary>
    public async Task DrainAsync(string reason)
    {
        if (Interlocked.Exchange(ref _draining, 1) != 0)
        {
            return;
        }

        try
        {
            var bound = listeners.Snapshot();
            await Task.WhenAll(bound.Select(l => l.UnbindAsync().AsTask())).ConfigureAwait(false);
            AcceptStrategyLog.WorkerDraining(_logger, _pid, reason, requests.Count, listeners.Connections.Open);

            // Connections with a request in the app close once it is done (Connection: close, or GOAWAY for
            // HTTP/2, whose clients would otherwise keep this worker alive as long as they like); the others on
            // their next request (the middleware), or below when they stay idle.
            foreach (var connection in listeners.Connections.Snapshot())
            {
                if (connection.HasRequestInApp)
                {
                    connection.RequestClose();
                }
            }

            // The grace: a busy client sends its next request within it and is told to go (Connection: close, GOAWAY).
            using (var graceOver = new CancellationTokenSource(Grace, Time))
            {
                await listeners.Connections.WhenAllClosed().WaitAsync(graceOver.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            // Then every connection with no request in the app goes: idle ones, silent ones and ones still sending
            // their request head, any of which a client could otherwise hold open until GracefulShutdownTimeout. An
            // HTTP/2 one gets GOAWAY instead: Kestrel closes it at once, and the client retries what it sent meanwhile.
            var cut = 0;
            foreach (var connection in listeners.Connections.Snapshot())
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
                AcceptStrategyLog.WorkerConnectionsCut(_logger, _pid, cut, (long)Grace.TotalMilliseconds);
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
            heartbeat.SendCounts();
            lifetime.StopApplication();
        }
    }
}
