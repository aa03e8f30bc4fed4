using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Supervisor.Policy;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>
/// The status view's bookkeeping on the supervisor's loop (used from the loop only): when each worker started by the
/// wall clock, how many exited for each reason, and the snapshot the view serializes.
/// </summary>
internal sealed class SupervisorStatus(TimeProvider time)
{
    private readonly DateTimeOffset _startedAt = time.GetUtcNow();

    // By the wall clock at spawn: SupervisedWorker.StartedAt is a monotonic timestamp that a supervisor pause shifts.
    private readonly Dictionary<SupervisedWorker, DateTimeOffset> _started = [];
    private readonly long[] _exits = new long[Enum.GetValues<WorkerExitReason>().Length];

    public void Started(SupervisedWorker worker) => _started[worker] = time.GetUtcNow();

    public void Exited(SupervisedWorker worker, WorkerExitReason reason)
    {
        _started.Remove(worker);
        _exits[(int)reason]++;
    }

    /// <summary>Completes <paramref name="reply"/> with a snapshot, or with the failure, so the view answers 500 at once instead of timing out.</summary>
    public void Reply(TaskCompletionSource<StatusSnapshot> reply, AcceptStrategy strategy, IReadOnlyList<SupervisedEndpoint> endpoints, IEnumerable<SupervisedWorker> workers)
    {
        try
        {
            reply.TrySetResult(Snapshot(strategy, endpoints, workers));
        }
        catch (Exception e)
        {
            reply.TrySetException(e);
        }
    }

    /// <summary>Every live worker (starting, standby, active, draining) by slot and generation; RSS is read later, off the loop.</summary>
    public StatusSnapshot Snapshot(AcceptStrategy strategy, IReadOnlyList<SupervisedEndpoint> endpoints, IEnumerable<SupervisedWorker> workers) => new(
        Environment.ProcessId,
        strategy.ToString(),
        [.. endpoints.Select(e => e.BoundEndPoint.ToString() ?? "")],
        _startedAt,

        // A stop is not a restart; every other reason is listed, zeros included, so the keys do not come and go.
        [.. Enum.GetValues<WorkerExitReason>().Where(r => r != WorkerExitReason.Stopped).Select(r => KeyValuePair.Create(r.Name(), _exits[(int)r]))],
        [.. workers.OrderBy(w => w.Slot.Index).ThenBy(w => w.Generation).Select(w => new WorkerStatus(
            w.Pid,
            w.Slot.Index,
            w.Generation,
            w.State.Name(),
            w.Requests,
            w.OpenConnections,
            w.InFlight,
            null,
            _started.TryGetValue(w, out var at) ? at : time.GetUtcNow() - time.GetElapsedTime(w.StartedAt),
            w.Budget,
            [.. w.Accepted]))]);
}
