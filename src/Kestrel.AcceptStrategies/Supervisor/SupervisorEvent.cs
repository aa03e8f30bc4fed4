using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Status;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>What wakes the supervisor's loop; each is handled on the loop alone, so its state needs no lock.</summary>
internal abstract record SupervisorEvent
{
    private SupervisorEvent()
    {
    }

    /// <summary>The first spawns.</summary>
    public sealed record Start : SupervisorEvent;

    public sealed record Message(SupervisedWorker Worker, ControlMessage Content) : SupervisorEvent;

    /// <summary>Reaped, with its <c>waitpid</c> status (-1 if unknown).</summary>
    public sealed record Exited(SupervisedWorker Worker, int Status) : SupervisorEvent;

    public sealed record Signal(SupervisorSignal Kind) : SupervisorEvent;

    /// <summary>A timer tick planned for <paramref name="PlannedAt"/> (a <see cref="TimeProvider"/> timestamp).</summary>
    public sealed record Tick(long PlannedAt) : SupervisorEvent;

    /// <summary>The status view asks for a snapshot: completed on the loop, serialized off it.</summary>
    public sealed record StatusRequested(TaskCompletionSource<StatusSnapshot> Reply) : SupervisorEvent;

    /// <summary>Graceful stop.</summary>
    public sealed record Stop : SupervisorEvent;

    /// <summary>The graceful stop ran out of time: kill what is left.</summary>
    public sealed record StopDeadline : SupervisorEvent;

    /// <summary>A successor supervisor (SIGUSR2) failed: the sockets handed to it are this one's alone again.</summary>
    public sealed record TakeBack : SupervisorEvent;
}
