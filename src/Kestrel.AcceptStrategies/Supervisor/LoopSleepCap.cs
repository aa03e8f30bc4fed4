namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The loop wakes for events and for the policy's next deadline, and otherwise only this often, to notice its own
/// pauses (SlotPolicy.PauseThreshold): a pause longer than the sleep plus the threshold is forgiven, so with a
/// quarter of the hang timeout (the idle heartbeat interval) a paused supervisor never blames a live worker.
/// </summary>
internal static class LoopSleepCap
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(5);

    /// <summary>How long the loop sleeps at most with no deadline and no event.</summary>
    public static TimeSpan For(TimeSpan hangTimeout) =>
        hangTimeout > TimeSpan.Zero ? TimeSpan.FromTicks(Math.Clamp(hangTimeout.Ticks / 4, Min.Ticks, Max.Ticks)) : Max;
}
