using Kestrel.AcceptStrategies.Supervisor;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Tells the supervisor this worker is alive, with its request and connection counts: every 100 ms while serving,
/// from the thread pool, so a starved worker falls silent.
/// </summary>
internal sealed class WorkerHeartbeat(
    WorkerControlClient control, WorkerRequests requests, WorkerListeners listeners, IOptions<AcceptStrategyOptions> options)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>Sends the counts now, as the last word before an exit the supervisor logs with them.</summary>
    public void SendCounts() => control.TrySend(Counts());

    /// <summary>Heart-beats until <paramref name="stopping"/> or until the supervisor is gone.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        // Every 100 ms while serving, so the supervisor's request counts (and so recycling) stay current; when nothing
        // changed, only often enough for the hang detector (a quarter of HangTimeout, at most 1 s), so an idle worker
        // sleeps.
        var hang = options.Value.HangTimeout;
        var idleInterval = hang > TimeSpan.Zero
            ? TimeSpan.FromTicks(Math.Clamp(hang.Ticks / 4, Interval.Ticks, TimeSpan.TicksPerSecond))
            : TimeSpan.FromSeconds(1);
        ControlMessage? last = null;
        try
        {
            while (true)
            {
                var message = Counts();
                if (!control.TrySend(message))
                {
                    return;
                }

                var changed = message != last;
                last = message;
                await Task.Delay(changed ? Interval : idleInterval, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private ControlMessage Counts() => ControlMessage.Heartbeat(requests.Count, listeners.Connections.Total);
}
