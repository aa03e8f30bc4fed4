using Kestrel.AcceptStrategies.Worker;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Registered by <c>UseWorkerProcesses()</c>: the app uses the worker process model. <see cref="Worker"/> is this
/// process's identity when a supervisor started it (read from the environment, not yet claimed), else null.
/// </summary>
internal sealed class WorkerProcessModel(WorkerIdentity? worker, bool workerModeServices)
{
    public WorkerIdentity? Worker { get; } = worker;

    /// <summary>
    /// Whether worker mode's services (the shared console, the HTTP/3 refusal) were registered: decided when
    /// <c>UseWorkerProcesses()</c> ran, from configuration and its callback; start-up checks the role agrees.
    /// </summary>
    public bool WorkerModeServices { get; } = workerModeServices;
}
