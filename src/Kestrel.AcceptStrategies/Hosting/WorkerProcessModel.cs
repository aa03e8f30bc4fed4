using Kestrel.AcceptStrategies.Worker;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Registered by <c>UseWorkerProcesses()</c>: the app uses the worker process model. <see cref="Worker"/> is this
/// process's identity when a supervisor started it (read from the environment, not yet claimed), else null.
/// </summary>
internal sealed class WorkerProcessModel(WorkerIdentity? worker)
{
    public WorkerIdentity? Worker { get; } = worker;
}
