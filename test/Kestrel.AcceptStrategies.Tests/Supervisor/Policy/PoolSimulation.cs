using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>
/// Plays workers for a <see cref="PolicyHarness"/> in 100 ms steps as real ones behave: ready after
/// <see cref="Startup"/>, heartbeats with their cumulative busy time every step while serving and only every 7.5 s
/// (a 30 s hang timeout's idle interval) while idle, drained workers gone at the next step. Records the pool's changes.
/// </summary>
internal sealed class PoolSimulation(PolicyHarness h)
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan IdleHeartbeat = TimeSpan.FromSeconds(7.5);

    private readonly Dictionary<SupervisedWorker, (double BusyMs, double Share, TimeSpan SentAt)> _workers = [];
    private int _size = -1;

    public TimeSpan Startup { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan Elapsed { get; private set; }

    /// <summary>Each change of the number of live slots: when, the new size, and which way.</summary>
    public List<(TimeSpan At, int Size, string Direction)> Changes { get; } = [];

    public Dictionary<SupervisorIntent.Spawn, TimeSpan> SpawnedAt { get; } = [];

    /// <summary>The most workers of added slots starting at once.</summary>
    public int MostStartingAtOnce { get; private set; }

    /// <summary>Runs for <paramref name="duration"/>, each accepting worker busy <paramref name="share"/>(it) of each step.</summary>
    public void Run(TimeSpan duration, Func<SupervisedWorker, double> share)
    {
        if (_size < 0)
        {
            h.StartAll(Startup);
            _size = h.Policy.LiveSlots;
        }

        for (var end = Elapsed + duration; Elapsed < end; Elapsed += Step)
        {
            h.Tick(Step);
            foreach (var worker in h.Policy.Workers.ToList())
            {
                Play(worker, share);
            }

            foreach (var spawn in h.Spawns.Where(s => !SpawnedAt.ContainsKey(s)).ToList())
            {
                SpawnedAt[spawn] = Elapsed;
            }

            MostStartingAtOnce = Math.Max(MostStartingAtOnce, h.Policy.Workers.Count(w => w.State == WorkerState.Starting && IsAdded(w)));
            var size = h.Policy.LiveSlots;
            if (size != _size)
            {
                Changes.Add((Elapsed, size, size > _size ? "grow" : "shrink"));
                _size = size;
            }
        }
    }

    /// <summary>
    /// The supervisor does not run for <paramref name="pause"/> while the workers serve <paramref name="share"/>: their
    /// heartbeats wait in the sockets and are read together when it runs again, before its late tick.
    /// </summary>
    public void Pause(TimeSpan pause, double share)
    {
        var queued = new List<(SupervisedWorker Worker, long BusyMs)>();
        var accepting = h.Policy.Workers.Where(w => w.State == WorkerState.Active).ToList();
        var planned = h.Time.GetTimestamp() + h.Time.Units(Step);
        for (var t = TimeSpan.Zero; t < pause; t += Step)
        {
            foreach (var worker in accepting)
            {
                var (busyMs, _, sentAt) = _workers[worker];
                busyMs += share * Step.TotalMilliseconds;
                _workers[worker] = (busyMs, share, sentAt);
                queued.Add((worker, (long)busyMs));
            }
        }

        h.Time.Advance(pause);
        Elapsed += pause;
        foreach (var (worker, busyMs) in queued)
        {
            h.Play(h.Policy.Received(worker, ControlMessage.Heartbeat(0, 0, 0, 1, busyMs, []), out _));
        }

        h.Play(h.Policy.Tick(planned));
    }

    private static bool IsAdded(SupervisedWorker worker) => worker.Slot.EmptyReason == SpawnReason.Scaled;

    private void Play(SupervisedWorker worker, Func<SupervisedWorker, double> share)
    {
        if (!h.Policy.Workers.Contains(worker))
        {
            return;
        }

        if (worker.Killed || worker.State == WorkerState.Draining)
        {
            h.Exit(worker, worker.Killed ? 9 : 0);
            return;
        }

        if (worker.State == WorkerState.Starting && h.Time.GetElapsedTime(worker.StartedAt) >= Startup)
        {
            h.Ready(worker);
            return;
        }

        if (worker.State != WorkerState.Active)
        {
            return;
        }

        var now = h.Time.GetElapsedTime(0);
        var busy = Math.Clamp(share(worker), 0, 1);
        var (busyMs, previous, sentAt) = _workers.GetValueOrDefault(worker, (0, -1, TimeSpan.Zero));
        busyMs += busy * Step.TotalMilliseconds;

        // An idle worker's counts do not change: it reports rarely; the first request after idling wakes its heartbeat.
        var send = busy > 0 || previous != 0 || now - sentAt >= IdleHeartbeat;
        _workers[worker] = (busyMs, busy, send ? now : sentAt);
        if (send)
        {
            h.Play(h.Policy.Received(worker, ControlMessage.Heartbeat(0, 0, 0, busy > 0 ? 1 : 0, (long)busyMs, []), out _));
        }
    }
}
