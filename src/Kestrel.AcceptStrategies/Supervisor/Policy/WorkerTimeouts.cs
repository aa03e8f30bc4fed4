using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>The supervisor's clocks on its workers: start, heartbeat and drain timeouts, and its own pauses.</summary>
internal static class WorkerTimeouts
{
    /// <summary>
    /// The supervisor itself did not run for <paramref name="gap"/> timestamp units: what its workers sent meanwhile
    /// waits unread in their sockets, so the gap must not count against them.
    /// </summary>
    public static void Forgive(IEnumerable<SupervisedWorker> workers, long gap, long now)
    {
        // Never past now: a heartbeat read just before the late tick is already current.
        foreach (var worker in workers)
        {
            worker.LastHeartbeat = Math.Min(worker.LastHeartbeat + gap, now);
            worker.StartedAt = Math.Min(worker.StartedAt + gap, now);
            worker.DrainStartedAt = Math.Min(worker.DrainStartedAt + gap, now);
        }
    }

    /// <summary>Workers to kill now, with why.</summary>
    public static IEnumerable<(SupervisedWorker Worker, WorkerExitReason Reason, string Detail)> Expired(
        IEnumerable<SupervisedWorker> workers, WorkerProcessOptions settings, TimeProvider time, long now)
    {
        foreach (var worker in workers.Where(w => !w.Killed))
        {
            var silent = time.GetElapsedTime(worker.LastHeartbeat, now);
            switch (worker.State)
            {
                case WorkerState.Starting when time.GetElapsedTime(worker.StartedAt, now) > settings.WorkerStartTimeout:
                    yield return (worker, WorkerExitReason.FailedToStart, $"not ready within the start timeout of {settings.WorkerStartTimeout}");
                    break;
                case WorkerState.Standby or WorkerState.Active when settings.HangTimeout > TimeSpan.Zero && silent > settings.HangTimeout:
                    yield return (worker, WorkerExitReason.Hung, $"no heartbeat for {silent.TotalSeconds:0.0} s (hang timeout {settings.HangTimeout})");
                    break;
                case WorkerState.Draining when time.GetElapsedTime(worker.DrainStartedAt, now) > settings.GracefulShutdownTimeout + SlotPolicy.DrainKillMargin:
                    yield return (worker, worker.ExitReason ?? WorkerExitReason.Stopped, $"still draining after the graceful shutdown timeout of {settings.GracefulShutdownTimeout}");
                    break;
            }
        }
    }

    /// <summary>
    /// The earliest timestamp at which <see cref="Expired"/> could name one of <paramref name="workers"/> (just past its
    /// timeout, as the comparisons there are strict); null when no clock runs on any of them.
    /// </summary>
    public static long? NextExpiry(IEnumerable<SupervisedWorker> workers, WorkerProcessOptions settings, TimeProvider time)
    {
        long? next = null;
        foreach (var worker in workers.Where(w => !w.Killed))
        {
            long? due = worker.State switch
            {
                WorkerState.Starting => After(worker.StartedAt, settings.WorkerStartTimeout, time),
                WorkerState.Standby or WorkerState.Active when settings.HangTimeout > TimeSpan.Zero => After(worker.LastHeartbeat, settings.HangTimeout, time),
                WorkerState.Draining => After(worker.DrainStartedAt, settings.GracefulShutdownTimeout + SlotPolicy.DrainKillMargin, time),
                _ => null,
            };
            if (due < (next ?? long.MaxValue))
            {
                next = due;
            }
        }

        return next;
    }

    /// <summary>The first timestamp more than <paramref name="timeout"/> after <paramref name="start"/>.</summary>
    public static long After(long start, TimeSpan timeout, TimeProvider time) => start + time.Units(timeout) + 1;

    /// <summary><c>RespawnBackoff</c> doubled per consecutive failure, capped at <c>MaxRespawnBackoff</c>.</summary>
    public static TimeSpan Backoff(WorkerProcessOptions settings, int failures)
    {
        var ticks = settings.RespawnBackoff.Ticks * Math.Pow(2, Math.Min(failures - 1, 30));
        return TimeSpan.FromTicks((long)Math.Min(ticks, settings.MaxRespawnBackoff.Ticks));
    }
}
