namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>Where a worker is in its life, as the supervisor sees it.</summary>
internal enum WorkerState
{
    /// <summary>Spawned; not yet warmed up and ready.</summary>
    Starting,

    /// <summary>Ready (warmed) and waiting for the word to accept: the replacement of a worker near its budget.</summary>
    Standby,

    /// <summary>Accepting and serving.</summary>
    Active,

    /// <summary>Told to stop accepting; finishing its requests.</summary>
    Draining,
}
