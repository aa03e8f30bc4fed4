using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// The limits that end a worker besides its request budget: <c>MaxWorkerLifetime</c> (drawn per worker, like the
/// budget) and <c>MaxWorkerMemoryMegabytes</c>. Pure, on a <see cref="TimeProvider"/>.
/// </summary>
internal static class WorkerLimits
{
    public const long Megabyte = 1024 * 1024;

    /// <summary>Uniform in [90%, 100%] of <c>MaxWorkerLifetime</c>, so workers started together do not end together.</summary>
    public static TimeSpan DrawLifetime(WorkerProcessOptions settings, Random random)
    {
        var max = settings.MaxWorkerLifetime.Ticks;
        return max <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(random.NextInt64(max * 9 / 10, max + 1));
    }

    /// <summary>The timestamp its lifetime ends; only for a worker with one.</summary>
    public static long LifetimeEnd(SupervisedWorker worker, TimeProvider time) =>
        worker.StartedAt + time.Units(worker.Lifetime);

    /// <summary>Whether its successor should start now to be ready when the lifetime ends.</summary>
    public static bool LifetimeNearEnd(SupervisedWorker worker, double leadSeconds, long now, TimeProvider time) =>
        worker.Lifetime > TimeSpan.Zero && LifetimeEnd(worker, time) - now <= time.Units(leadSeconds);

    /// <summary>Which limit says it should go now (the exit reason), or null while none does.</summary>
    public static WorkerExitReason? Due(SupervisedWorker worker, long now, TimeProvider time) =>
        worker.OverMemory ? WorkerExitReason.Memory
        : worker.Lifetime > TimeSpan.Zero && now >= LifetimeEnd(worker, time) ? WorkerExitReason.Lifetime
        : worker.BudgetReached ? WorkerExitReason.Recycled
        : null;
}
