using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// The supervisor's view of one worker: plain state the <see cref="SlotPolicy"/> reads and writes (timestamps from
/// its <see cref="TimeProvider"/>). The process itself is the loop's (<c>WorkerFleet</c> holds its pidfd and control socket).
/// </summary>
internal sealed class SupervisedWorker(int pid, WorkerSlot slot, int generation, long budget, long startedAt)
{
    public int Pid { get; } = pid;

    public WorkerSlot Slot { get; } = slot;

    public int Generation { get; } = generation;

    public long Budget { get; } = budget;

    public WorkerState State { get; set; } = WorkerState.Starting;

    public long StartedAt { get; set; } = startedAt;

    public long LastHeartbeat { get; set; } = startedAt;

    public long DrainStartedAt { get; set; }

    /// <summary>When it first reported ready; null until then.</summary>
    public long? ReadyAt { get; set; }

    public long Requests { get; set; }

    /// <summary>Connections accepted so far.</summary>
    public long Connections { get; set; }

    /// <summary>Connections accepted and not yet closed, at the last heartbeat.</summary>
    public long OpenConnections { get; set; }

    /// <summary>Requests in flight at the last heartbeat.</summary>
    public long InFlight { get; set; }

    /// <summary>Time with at least one request in flight since it started, as of the last heartbeat.</summary>
    public TimeSpan Busy { get; set; }

    /// <summary>Connections each of its acceptors has taken, in endpoint then acceptor order.</summary>
    public IReadOnlyList<long> Accepted { get; set; } = [];

    /// <summary>Requests per second, smoothed over heartbeats; used to start a replacement in time.</summary>
    public double RequestRate { get; set; }

    public bool BudgetReached => Budget > 0 && Requests >= Budget;

    /// <summary>How long it may live from <see cref="StartedAt"/> (drawn per worker); zero for no limit.</summary>
    public TimeSpan Lifetime { get; init; }

    /// <summary>Resident memory at the last heartbeat the supervisor measured, in bytes; 0 if never measured.</summary>
    public long RssBytes { get; set; }

    /// <summary>Its resident memory passed the limit once: it is replaced even if a collection brings it back under.</summary>
    public bool OverMemory { get; set; }

    /// <summary>Why the supervisor ended this worker (drained or killed it); null if it exited on its own.</summary>
    public WorkerExitReason? ExitReason { get; set; }

    /// <summary>Sent SIGKILL by the supervisor.</summary>
    public bool Killed { get; set; }

    public override string ToString() => $"worker {Pid} (slot {Slot.Index}, generation {Generation})";

    /// <summary>A <c>waitpid</c> status in words.</summary>
    public static string DescribeStatus(int status)
    {
        if (status == -1)
        {
            return "exit status unknown";
        }

        var signal = status & 0x7f;
        return signal == 0
            ? $"exit code {(status >> 8) & 0xff}"
            : $"killed by signal {signal}{(signal == 9 ? " (SIGKILL)" : signal == 15 ? " (SIGTERM)" : signal == 6 ? " (SIGABRT)" : signal == 11 ? " (SIGSEGV)" : "")}";
    }
}
