namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>One live worker in a <see cref="StatusSnapshot"/>, as of its last heartbeat.</summary>
/// <param name="Pid">The worker's process id.</param>
/// <param name="Slot">Its slot: 0..Workers-1, and above while SIGTTIN or the adaptive pool added slots.</param>
/// <param name="Generation">Its number among the workers its slot has had, this one included (1 for the first).</param>
/// <param name="State">starting, standby, active or draining (<see cref="WorkerStatusStates"/>).</param>
/// <param name="Requests">Requests it started (warm-up excluded).</param>
/// <param name="Connections">Connections open now.</param>
/// <param name="InFlight">Requests in flight.</param>
/// <param name="RssBytes">VmRSS read when the status was asked for; null if it could not be read (the worker just exited).</param>
/// <param name="StartedAt">When the supervisor spawned it, by the wall clock.</param>
/// <param name="Budget">Its request budget; 0 for none.</param>
/// <param name="Accepted">Connections each acceptor took, in endpoint then acceptor order.</param>
internal sealed record WorkerStatus(
    int Pid,
    int Slot,
    int Generation,
    string State,
    long Requests,
    long Connections,
    long InFlight,
    long? RssBytes,
    DateTimeOffset StartedAt,
    long Budget,
    IReadOnlyList<long> Accepted);
