using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Tells the supervisor this worker is alive, with its counts (requests, connections, requests in flight, time busy,
/// connections per acceptor): every 100 ms while serving,
/// a quarter of the hang timeout when idle, from the thread pool, so a starved worker falls silent.
/// </summary>
internal sealed class WorkerHeartbeat(
    WorkerControlClient control, WorkerRequests requests, WorkerListeners listeners, IOptions<WorkerProcessOptions> options)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    // With hang detection off an idle heartbeat serves nothing; the supervisor notices an exit by its pidfd.
    private static readonly TimeSpan IdleWithoutHangTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Sends the counts now, as the last word before an exit the supervisor logs with them.</summary>
    public void SendCounts() => control.TrySend(Counts());

    /// <summary>Heart-beats until <paramref name="stopping"/> or until the supervisor is gone.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        var idleInterval = IdleInterval(options.Value.HangTimeout);
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

                var changed = last is not { } previous || !message.SameCounts(previous);
                last = message;
                if (changed)
                {
                    await Task.Delay(Interval, stopping).ConfigureAwait(false);
                    continue;
                }

                // Idle: asleep until the next request (or the warm-up's reset) or the idle interval, so counts are fresh
                // again at once; unless they changed since they were sent (a listener bound, a warm-up came and went).
                var next = requests.NextRequest();
                if (Counts().SameCounts(message))
                {
                    try
                    {
                        await next.WaitAsync(idleInterval, stopping).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// When nothing changed, only as often as the hang detector needs (a quarter of HangTimeout: three may be lost or
    /// late before the verdict), so an idle group sleeps; while serving, every 100 ms keeps the supervisor's request
    /// counts (and so recycling) current.
    /// </summary>
    internal static TimeSpan IdleInterval(TimeSpan hangTimeout) =>
        hangTimeout > TimeSpan.Zero ? TimeSpan.FromTicks(Math.Max(hangTimeout.Ticks / 4, Interval.Ticks)) : IdleWithoutHangTimeout;

    private ControlMessage Counts()
    {
        long[] accepted = [.. listeners.Snapshot().SelectMany(l => l.AcceptedPerAcceptor)];

        // Each count takes at most 20 bytes; past the channel's limit the per-acceptor counts (the status view's) are
        // left out rather than the heartbeat cut short, which the supervisor would take for silence.
        if ((accepted.Length * 20L) + 200 > ControlChannel.MaxMessageBytes)
        {
            accepted = [];
        }

        return ControlMessage.Heartbeat(
            requests.Count, listeners.Connections.Total, listeners.Connections.Open, requests.InFlight, (long)requests.Busy.TotalMilliseconds, accepted);
    }
}
