using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>A worker's request budget: drawn per worker (Starlet's min/max jitter), and when to start its successor.</summary>
internal static class RequestBudget
{
    /// <summary>Uniform in [Min, Max] (Min 0 means 90% of Max); 0 when there is no limit.</summary>
    public static long Draw(WorkerProcessOptions settings, Random random)
    {
        var max = settings.MaxRequestsPerWorker;
        if (max == 0)
        {
            return 0;
        }

        var min = settings.MinRequestsPerWorker > 0 ? settings.MinRequestsPerWorker : Math.Max(1, max * 9 / 10);
        return random.NextInt64(min, (long)max + 1);
    }

    /// <summary>
    /// Whether the successor should start now to be ready about when the budget runs out: the worker's request rate
    /// times <paramref name="leadSeconds"/> (the measured start-up time with a margin) covers what is left.
    /// </summary>
    public static bool NearEnd(SupervisedWorker worker, double leadSeconds) =>
        worker.Budget > 0 && worker.Budget - worker.Requests <= worker.RequestRate * leadSeconds + 1;
}
