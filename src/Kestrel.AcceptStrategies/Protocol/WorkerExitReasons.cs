namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>The stable names of <see cref="WorkerExitReason"/> in logs and metric tags.</summary>
internal static class WorkerExitReasons
{
    public static string Name(this WorkerExitReason reason) => reason switch
    {
        WorkerExitReason.Recycled => "recycled",
        WorkerExitReason.Lifetime => "lifetime",
        WorkerExitReason.Memory => "memory",
        WorkerExitReason.Reload => "reload",
        WorkerExitReason.Scaled => "scaled",
        WorkerExitReason.Stopped => "stopped",
        WorkerExitReason.Superseded => "superseded",
        WorkerExitReason.Crashed => "crashed",
        WorkerExitReason.Exited => "exited",
        WorkerExitReason.FailedToStart => "failed_to_start",
        WorkerExitReason.Hung => "hung",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, null),
    };

    /// <summary>Whether the supervisor asked for it: logged as information, not a warning.</summary>
    public static bool IsExpected(this WorkerExitReason reason) =>
        reason is WorkerExitReason.Recycled or WorkerExitReason.Lifetime or WorkerExitReason.Memory or WorkerExitReason.Reload or WorkerExitReason.Scaled or WorkerExitReason.Stopped or WorkerExitReason.Superseded;

    public static bool TryParse(string name, out WorkerExitReason reason)
    {
        foreach (var candidate in Enum.GetValues<WorkerExitReason>())
        {
            if (candidate.Name() == name)
            {
                reason = candidate;
                return true;
            }
        }

        reason = default;
        return false;
    }
}
