using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>
/// A <see cref="SlotPolicy"/> on a fake clock, played like the supervisor's loop plays it: every Spawn intent gets a
/// made-up pid at once, and every intent is recorded for the test to read.
/// </summary>
internal sealed class PolicyHarness
{
    private int _nextPid = 1000;

    public PolicyHarness(Action<WorkerProcessOptions>? configure = null, AcceptStrategyMetrics? metrics = null)
    {
        Settings = new WorkerProcessOptions { Workers = 2, RespawnBackoff = TimeSpan.FromSeconds(1), MaxRespawnBackoff = TimeSpan.FromSeconds(8) };
        configure?.Invoke(Settings);
        Policy = new SlotPolicy(Settings, Time, new Random(42), NullLogger.Instance, metrics);
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero));

    public WorkerProcessOptions Settings { get; }

    public SlotPolicy Policy { get; }

    /// <summary>Every intent so far, in order.</summary>
    public List<SupervisorIntent> Intents { get; } = [];

    /// <summary>For each next spawn: true makes the launch itself fail (descriptors, memory).</summary>
    public Queue<bool> SpawnFailures { get; } = new();

    public IEnumerable<SupervisorIntent.Spawn> Spawns => Intents.OfType<SupervisorIntent.Spawn>();

    public SupervisedWorker Active(int slot) => Policy.Slots.Single(s => s.Index == slot && !s.Removed).Active!;

    public SupervisedWorker? Next(int slot) => Policy.Slots.Single(s => s.Index == slot && !s.Removed).Next;

    public List<SupervisorIntent> Play(IReadOnlyList<SupervisorIntent> intents)
    {
        var played = new List<SupervisorIntent>();
        foreach (var intent in intents)
        {
            played.Add(intent);
            Intents.Add(intent);
            if (intent is SupervisorIntent.Spawn spawn)
            {
                if (SpawnFailures.TryDequeue(out var fail) && fail)
                {
                    Policy.SpawnFailed(spawn.Slot);
                }
                else
                {
                    Policy.Spawned(spawn, _nextPid++);
                }
            }
        }

        return played;
    }

    /// <summary>Starts the slots and makes every first worker ready after <paramref name="startup"/>.</summary>
    public void StartAll(TimeSpan? startup = null)
    {
        Play(Policy.Start(Settings.Workers));
        Time.Advance(startup ?? TimeSpan.FromSeconds(1));
        foreach (var worker in Policy.Workers.ToList())
        {
            Ready(worker);
        }
    }

    public List<SupervisorIntent> Ready(SupervisedWorker worker) => Play(Policy.Received(worker, ControlMessage.Ready, out _));

    public List<SupervisorIntent> Heartbeat(SupervisedWorker worker, long requests) =>
        Play(Policy.Received(worker, ControlMessage.Heartbeat(requests, 1), out _));

    public List<SupervisorIntent> BudgetSpent(SupervisedWorker worker) =>
        Play(Policy.Received(worker, ControlMessage.BudgetSpent(worker.Budget), out _));

    public List<SupervisorIntent> Exit(SupervisedWorker worker, int status = 0) => Exit(worker, status, out _);

    public List<SupervisorIntent> Exit(SupervisedWorker worker, int status, out WorkerExitReason reason) => Play(Policy.Exited(worker, status, out reason));

    /// <summary>Advances the clock and ticks on time (as the loop's timer would).</summary>
    public List<SupervisorIntent> Tick(TimeSpan advance)
    {
        Time.Advance(advance);
        return Play(Policy.Tick(Time.GetTimestamp()));
    }

    public List<SupervisorIntent> Reload(int? workers = null) => Play(Policy.Reload(workers, out _));
}
