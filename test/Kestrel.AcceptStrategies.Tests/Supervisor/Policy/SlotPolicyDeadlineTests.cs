using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Intent = Kestrel.AcceptStrategies.Supervisor.Policy.SupervisorIntent;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>
/// The loop sleeps until <see cref="SlotPolicy.NextDeadline"/> instead of polling: on a fake clock, ticking only at the
/// deadlines it names gives every timed verdict (hang, start timeout, back-off, drain, spawn interval) on time.
/// </summary>
public sealed class SlotPolicyDeadlineTests
{
    [Fact]
    public void SteadyIdleGroup_NextDeadlineIsTheHangTimeout_NothingTimedWithoutIt()
    {
        var h = new PolicyHarness(o => o.HangTimeout = TimeSpan.FromSeconds(30));
        h.StartAll();
        var readyAt = h.Time.GetTimestamp();

        var deadline = Assert.IsType<long>(h.Policy.NextDeadline());
        Assert.InRange(h.Time.GetElapsedTime(readyAt, deadline), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30.001));

        var off = new PolicyHarness(o => o.HangTimeout = TimeSpan.Zero);
        off.StartAll();
        Assert.Null(off.Policy.NextDeadline());
    }

    [Fact]
    public void TickingOnlyAtDeadlines_SilentWorkerKilledJustAfterHangTimeout_HeartbeatingOneKept()
    {
        var h = new PolicyHarness(o => o.HangTimeout = TimeSpan.FromSeconds(3));
        h.StartAll();
        var (silent, alive) = (h.Active(0), h.Active(1));
        var silentSince = h.Time.GetTimestamp();

        // Heartbeats every 750 ms (a quarter of the hang timeout) are events; the only ticks are at deadlines.
        for (var i = 0; i < 8 && !silent.Killed; i++)
        {
            var nextHeartbeat = h.Time.GetTimestamp() + (h.Time.TimestampFrequency * 3 / 4);
            while (h.Policy.NextDeadline() is { } due && due <= nextHeartbeat && !silent.Killed)
            {
                TickAt(h, due);
            }

            if (silent.Killed)
            {
                break;
            }

            h.Time.Advance(h.Time.GetElapsedTime(h.Time.GetTimestamp(), nextHeartbeat));
            h.Heartbeat(alive, i);
        }

        var kill = Assert.Single(h.Intents.OfType<Intent.Kill>());
        Assert.Equal((silent, WorkerExitReason.Hung), (kill.Worker, kill.Reason));
        Assert.InRange(h.Time.GetElapsedTime(silentSince), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3.001));
        Assert.False(alive.Killed);
    }

    [Fact]
    public void StartingWorker_DeadlineIsItsStartTimeout_KilledWhenTickedThere()
    {
        var h = new PolicyHarness(o => (o.Workers, o.WorkerStartTimeout, o.HangTimeout) = (1, TimeSpan.FromSeconds(5), TimeSpan.Zero));
        h.Play(h.Policy.Start(1));
        var starting = h.Next(0)!;

        var due = Assert.IsType<long>(h.Policy.NextDeadline());
        TickAt(h, due - 1);
        Assert.False(starting.Killed);
        TickAt(h, due);
        Assert.True(starting.Killed);
        Assert.Equal(WorkerExitReason.FailedToStart, starting.ExitReason);
    }

    [Fact]
    public void Backoff_DeadlineIsTheRetry_SpawnsWhenTickedThere()
    {
        var h = new PolicyHarness(o => (o.Workers, o.HangTimeout) = (1, TimeSpan.Zero));
        h.Play(h.Policy.Start(1));
        h.Exit(h.Next(0)!, status: 6);
        var spawns = h.Spawns.Count();

        var due = Assert.IsType<long>(h.Policy.NextDeadline());
        Assert.InRange(h.Time.GetElapsedTime(h.Time.GetTimestamp(), due), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.001));
        TickAt(h, due);
        Assert.Equal(spawns + 1, h.Spawns.Count());
    }

    [Fact]
    public void DrainingWorker_DeadlineIsGracefulTimeoutPlusMargin_KilledWhenTickedThere()
    {
        var h = new PolicyHarness(o => (o.Workers, o.HangTimeout, o.GracefulShutdownTimeout) = (1, TimeSpan.Zero, TimeSpan.FromSeconds(2)));
        h.StartAll();
        var old = h.Active(0);
        h.Reload();
        h.Ready(h.Next(0)!);
        Assert.Equal(WorkerState.Draining, old.State);

        var due = Assert.IsType<long>(h.Policy.NextDeadline());
        Assert.InRange(h.Time.GetElapsedTime(h.Time.GetTimestamp(), due), TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(7.001));
        TickAt(h, due);
        Assert.True(old.Killed);
    }

    [Fact]
    public void SpawnInterval_DeadlineIsTheIntervalsEnd_NextRespawnThen()
    {
        var h = new PolicyHarness(o => (o.Workers, o.HangTimeout, o.SpawnInterval) = (2, TimeSpan.Zero, TimeSpan.FromSeconds(3)));
        h.StartAll();
        h.Tick(SlotPolicy.StableAfterReady);
        h.Exit(h.Active(0), status: 139);
        var spawns = h.Spawns.Count();
        h.Exit(h.Active(1), status: 139);
        Assert.Equal(spawns, h.Spawns.Count());

        var due = Assert.IsType<long>(h.Policy.NextDeadline());
        TickAt(h, due);
        Assert.Equal(spawns + 1, h.Spawns.Count());
    }

    private static void TickAt(PolicyHarness h, long timestamp)
    {
        h.Time.Advance(h.Time.GetElapsedTime(h.Time.GetTimestamp(), timestamp));
        h.Play(h.Policy.Tick(timestamp));
    }
}
