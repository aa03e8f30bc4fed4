namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>
/// What the status view shows, taken on the supervisor's loop in one go (so it is consistent) and formatted off it.
/// Immutable: the loop keeps changing its own state while this is serialized.
/// </summary>
internal sealed record StatusSnapshot(
    int Pid,
    string Strategy,
    IReadOnlyList<string> Endpoints,
    DateTimeOffset StartedAt,
    IReadOnlyList<KeyValuePair<string, long>> Restarts,
    IReadOnlyList<WorkerStatus> Workers);
