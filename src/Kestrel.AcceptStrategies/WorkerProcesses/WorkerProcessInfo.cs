namespace Kestrel.AcceptStrategies.WorkerProcesses;

/// <summary>
/// This process's place in the worker model, registered as a singleton by <c>UseAcceptStrategy()</c> and <c>UseWorkerProcesses()</c>. Inject it to
/// keep work out of the supervisor, which runs the whole app but serves no requests:
/// <code>
/// if (process.Role == WorkerProcessRole.Supervisor) return; // in a hosted service's ExecuteAsync
/// </code>
/// </summary>
public sealed class WorkerProcessInfo
{
    private readonly Lazy<(WorkerProcessRole Role, int Slot, int Generation)> _value;

    internal WorkerProcessInfo(WorkerProcessRole role, int slot, int generation) => _value = new((role, slot, generation));

    // Lazy, so resolving this (or Kestrel's transport, which needs it) does not validate the options before start-up does.
    internal WorkerProcessInfo(Func<(WorkerProcessRole, int, int)> resolve) => _value = new(resolve);

    /// <summary>Whether this process serves requests alone, supervises workers, or is a worker.</summary>
    public WorkerProcessRole Role => _value.Value.Role;

    /// <summary>
    /// A worker's slot, from 0: below <c>Workers</c> in a fixed pool never scaled by SIGTTIN, below <c>MaxWorkers</c> in an
    /// adaptive one; a new slot takes the lowest free index. Successive workers in a slot replace each other. -1 outside
    /// workers.
    /// </summary>
    public int Slot => _value.Value.Slot;

    /// <summary>How many workers this slot has had, this one included (1 for the first). 0 outside workers.</summary>
    public int Generation => _value.Value.Generation;
}
