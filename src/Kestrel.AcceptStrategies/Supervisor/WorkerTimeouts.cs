namespace Kestrel.AcceptStrategies.Supervisor;

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
        IEnumerable<SupervisedWorker> workers, AcceptStrategyOptions settings, TimeProvider time, long now)
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

    /// <summary><c>RespawnBackoff</c> doubled per consecutive failure, capped at <c>MaxRespawnBackoff</c>.</summary>
    public static TimeSpan Backoff(AcceptStrategyOptions settings, int failures)
    {
        var ticks = settings.RespawnBackoff.Ticks * Math.Pow(2, Math.Min(failures - 1, 30));
        return TimeSpan.FromTicks((long)Math.Min(ticks, settings.MaxRespawnBackoff.Ticks));
    }
}
