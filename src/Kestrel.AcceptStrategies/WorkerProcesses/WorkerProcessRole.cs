namespace Kestrel.AcceptStrategies.WorkerProcesses;

/// <summary>
/// What this process is in the worker process model.
/// </summary>
public enum WorkerProcessRole
{
    /// <summary><c>Workers</c> is 0: this process accepts and serves requests itself.</summary>
    SingleProcess,

    /// <summary>
    /// <c>Workers</c> is above 0 and this is the process the user started: it binds the endpoints, starts and watches
    /// the workers, and serves no requests. Keep request-serving background work (queues, caches, timers) out of it.
    /// </summary>
    Supervisor,

    /// <summary>A worker process started by the supervisor: it accepts on the supervisor's sockets and serves requests.</summary>
    Worker,
}
