namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// A place for one worker. Successive workers of a slot are its generations; with ReusePort they inherit the
/// slot's own sockets. Touched only by the supervisor's event loop.
/// </summary>
internal sealed class WorkerSlot(int index)
{
    public int Index { get; } = index;

    public int Generations { get; set; }

    /// <summary>The worker accepting in this slot.</summary>
    public SupervisedWorker? Active { get; set; }

    /// <summary>The worker starting (or ready, standing by) to take over.</summary>
    public SupervisedWorker? Next { get; set; }

    /// <summary>Workers in a row that could not be started, or exited or timed out before they were ready.</summary>
    public int Failures { get; set; }

    /// <summary>Not before this timestamp does the slot get a new worker after a failure.</summary>
    public long NextSpawnAt { get; set; }

    /// <summary>The next spawn's reason when the slot is empty.</summary>
    public SpawnReason EmptyReason { get; set; } = SpawnReason.Initial;

    /// <summary>SIGHUP: replace the active worker even though its budget is not spent.</summary>
    public bool ReloadRequested { get; set; }

    /// <summary>A recycle is held back by the cap on draining workers (logged once per episode).</summary>
    public bool RecycleDeferred { get; set; }

    /// <summary>Scaled down: no new workers; the slot goes once its workers have.</summary>
    public bool Removed { get; set; }
}
