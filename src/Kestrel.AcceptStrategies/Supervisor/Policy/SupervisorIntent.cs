using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>What the <see cref="SlotPolicy"/> decided; the supervisor's loop carries it out.</summary>
internal abstract record SupervisorIntent
{
    private SupervisorIntent()
    {
    }

    /// <summary>Start a worker in <paramref name="Slot"/>; report the outcome with <c>Spawned</c> or <c>SpawnFailed</c>.
    /// <paramref name="Lifetime"/> is the worker's drawn share of <c>MaxWorkerLifetime</c> (zero: none).</summary>
    public sealed record Spawn(WorkerSlot Slot, SpawnReason Reason, int Generation, long Budget, TimeSpan Lifetime = default) : SupervisorIntent;

    /// <summary>Tell a standby worker to accept: it has just become its slot's active worker.</summary>
    public sealed record Accept(SupervisedWorker Worker) : SupervisorIntent;

    /// <summary>Tell a worker to stop accepting, finish and exit.</summary>
    public sealed record Drain(SupervisedWorker Worker, WorkerExitReason Reason) : SupervisorIntent;

    /// <summary>SIGKILL a worker.</summary>
    public sealed record Kill(SupervisedWorker Worker, WorkerExitReason Reason, string Detail) : SupervisorIntent;

    /// <summary>A removed slot's sockets (ReusePort) are no longer its: kept for the next slot of that index where connections are steered, closed otherwise.</summary>
    public sealed record ReleaseSlot(int Slot) : SupervisorIntent;

    /// <summary>Close every listening socket the supervisor holds: a graceful stop has begun.</summary>
    public sealed record CloseListeners : SupervisorIntent;
}
