namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>Why a worker ended: chosen by the supervisor when it drained or killed it, else read from its exit.</summary>
internal enum WorkerExitReason
{
    /// <summary>Drained after spending its request budget.</summary>
    Recycled,

    /// <summary>Drained after reaching its drawn share of <c>MaxWorkerLifetime</c>.</summary>
    Lifetime,

    /// <summary>Drained after its resident memory passed <c>MaxWorkerMemoryMegabytes</c>.</summary>
    Memory,

    /// <summary>Drained by a reload (SIGHUP).</summary>
    Reload,

    /// <summary>Its slot was removed (SIGTTOU, fewer workers on reload, or the adaptive pool shrinking).</summary>
    Scaled,

    /// <summary>The supervisor is stopping.</summary>
    Stopped,

    /// <summary>A replacement started before a reload signal: it runs the old code, so it never accepts.</summary>
    Superseded,

    /// <summary>Died unasked after it was ready.</summary>
    Crashed,

    /// <summary>Exited unasked with code 0 after it was ready (stopped from outside, e.g. a terminal's SIGINT).</summary>
    Exited,

    /// <summary>Died, or was killed for its start timeout, before it was ready.</summary>
    FailedToStart,

    /// <summary>Killed for missing heartbeats.</summary>
    Hung,
}
