using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Intent = Kestrel.AcceptStrategies.Supervisor.Policy.SupervisorIntent;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>Back-off, timeouts and pauses of the slot policy, on a fake clock with no process.</summary>
public sealed class SlotPolicyFailureTests
{
    [Fact]
    public void Backoff_WorkerDiesBeforeReady_DoublesUpToTheCap()
    {
        var h = new PolicyHarness(o => o.Workers = 1);
        h.Play(h.Policy.Start(1));

        var delays = new List<TimeSpan>();
        for (var failure = 0; failure < 5; failure++)
        {
            h.Exit(h.Next(0)!, status: 6, out var reason);
            Assert.Equal(WorkerExitReason.FailedToStart, reason);
            delays.Add(TimeUntilNextSpawn(h));
        }

        Assert.Equal([1, 2, 4, 8, 8], delays.Select(d => (int)d.TotalSeconds));
    }

    [Fact]
    public void Backoff_LaunchItselfFails_SameBackoff()
    {
        var h = new PolicyHarness(o => o.Workers = 1);
        h.SpawnFailures.Enqueue(true);
        h.SpawnFailures.Enqueue(true);
        h.Play(h.Policy.Start(1));

        Assert.Equal(1, (int)TimeUntilNextSpawn(h).TotalSeconds);
        Assert.Equal(2, (int)TimeUntilNextSpawn(h).TotalSeconds);
        Assert.NotNull(h.Next(0));
    }

    [Fact]
    public void Backoff_ReloadReplacementDiesAtStart_OldWorkerKeepsServingAndRetriesWait()
    {
        var h = new PolicyHarness(o => o.Workers = 1);
        h.StartAll();
        var old = h.Active(0);
        h.Reload();

        for (var failure = 0; failure < 3; failure++)
        {
            h.Exit(h.Next(0)!, status: 6);
            Assert.Null(h.Next(0));
            h.Tick(TimeSpan.FromMilliseconds(50));
            Assert.Null(h.Next(0));
            TimeUntilNextSpawn(h);
            Assert.Equal(SpawnReason.Reload, h.Spawns.Last().Reason);
        }

        Assert.Same(old, h.Active(0));
        Assert.DoesNotContain(h.Intents, i => i is Intent.Drain);
    }

    [Fact]
    public void Backoff_StayingUpAfterReadyResetsTheFailureCount()
    {
        var h = new PolicyHarness(o => o.Workers = 1);
        h.Play(h.Policy.Start(1));
        h.Exit(h.Next(0)!, status: 6);
        h.Exit(h.Next(0) ?? Spawned(h), status: 6);
        h.Ready(h.Next(0) ?? Spawned(h));
        h.Tick(SlotPolicy.StableAfterReady);
        h.Exit(h.Active(0), status: 9);

        // Crashed after it had been up long enough: at once, and a failure after that starts again from RespawnBackoff.
        Assert.NotNull(h.Next(0));
        h.Exit(h.Next(0)!, status: 6);
        Assert.Equal(1, (int)TimeUntilNextSpawn(h).TotalSeconds);
    }

    [Fact]
    public void Backoff_HeartbeatOfAWorkerUpLongEnoughClearsTheFailures()
    {
        var h = new PolicyHarness(o => o.Workers = 1);
        h.Play(h.Policy.Start(1));
        h.Exit(h.Next(0)!, status: 6);
        h.Exit(h.Next(0) ?? Spawned(h), status: 6);
        h.Ready(h.Next(0) ?? Spawned(h));
        Assert.Equal(2, h.Policy.Slots[0].Failures);

        h.Time.Advance(SlotPolicy.StableAfterReady - TimeSpan.FromMilliseconds(1));
        h.Heartbeat(h.Active(0), requests: 10);
        Assert.Equal(2, h.Policy.Slots[0].Failures);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        h.Heartbeat(h.Active(0), requests: 20);
        Assert.Equal(0, h.Policy.Slots[0].Failures);
    }

    [Fact]
    public void Backoff_WorkersCrashSoonAfterReady_SlotBacksOffDoublingInsteadOfRespawningAtOnce()
    {
        // A request or a hosted service that kills every new worker shortly after it reports ready: without a back-off
        // the slot would start a worker (a whole .NET start-up) each time one dies.
        var h = new PolicyHarness(o => o.Workers = 1);
        h.StartAll(TimeSpan.FromMilliseconds(300));
        var delays = new List<TimeSpan>();
        for (var crash = 0; crash < 5; crash++)
        {
            h.Time.Advance(SlotPolicy.StableAfterReady - TimeSpan.FromSeconds(1));
            h.Exit(h.Active(0), status: 11, out var reason);
            Assert.Equal(WorkerExitReason.Crashed, reason);
            delays.Add(h.Next(0) is null ? TimeUntilNextSpawn(h) : TimeSpan.Zero);
            h.Ready(h.Next(0)!);
        }

        // The first early crash is replaced at once, as any crash; each one after it waits, doubling.
        Assert.Equal([0, 2, 4, 8, 8], delays.Select(d => (int)d.TotalSeconds));
    }

    [Fact]
    public void StartTimeout_NotReadyInTime_KilledAsFailedToStartThenBackoff()
    {
        var h = new PolicyHarness(o => (o.Workers, o.WorkerStartTimeout) = (1, TimeSpan.FromSeconds(5)));
        h.Play(h.Policy.Start(1));
        var slow = h.Next(0)!;

        Assert.Empty(h.Tick(TimeSpan.FromSeconds(5)));
        var killed = Assert.Single(h.Tick(TimeSpan.FromMilliseconds(50)));

        Assert.Equal(new Intent.Kill(slow, WorkerExitReason.FailedToStart, ((Intent.Kill)killed).Detail), killed);
        h.Exit(slow, status: 9);
        Assert.Equal(1, (int)TimeUntilNextSpawn(h).TotalSeconds);
    }

    [Fact]
    public void HangTimeout_SilentWorkerKilled_HeartbeatingOneKept_ZeroTurnsItOff()
    {
        var h = new PolicyHarness(o => o.HangTimeout = TimeSpan.FromSeconds(3));
        h.StartAll();
        var (silent, alive) = (h.Active(0), h.Active(1));

        for (var i = 0; i < 8; i++)
        {
            h.Tick(TimeSpan.FromMilliseconds(500));
            h.Heartbeat(alive, i);
        }

        var kill = Assert.Single(h.Intents.OfType<Intent.Kill>());
        Assert.Equal((silent, WorkerExitReason.Hung), (kill.Worker, kill.Reason));

        var off = new PolicyHarness(o => o.HangTimeout = TimeSpan.Zero);
        off.StartAll();
        off.Tick(TimeSpan.FromMinutes(10));
        Assert.DoesNotContain(off.Intents, i => i is Intent.Kill);
    }

    [Fact]
    public void SupervisorPaused_LongerThanHangTimeout_NobodyKilled()
    {
        var h = new PolicyHarness(o => o.HangTimeout = TimeSpan.FromSeconds(3));
        h.StartAll();
        h.Tick(TimeSpan.FromMilliseconds(500));

        // The tick planned 500 ms ahead runs 5 s late: the supervisor was stopped, not the workers.
        var plannedAt = h.Time.GetTimestamp() + (h.Time.TimestampFrequency / 2);
        h.Time.Advance(TimeSpan.FromSeconds(5.5));
        h.Play(h.Policy.Tick(plannedAt));
        Assert.DoesNotContain(h.Intents, i => i is Intent.Kill);

        // Still silent a full HangTimeout after the pause: now it is the worker.
        h.Tick(TimeSpan.FromSeconds(3.5));
        Assert.Equal(2, h.Intents.OfType<Intent.Kill>().Count(k => k.Reason == WorkerExitReason.Hung));
    }

    [Fact]
    public void KilledStandby_ReadyArrivesAfterTheKill_NeverPromoted()
    {
        var h = new PolicyHarness(o => (o.Workers, o.WorkerStartTimeout) = (1, TimeSpan.FromSeconds(5)));
        h.StartAll();
        var healthy = h.Active(0);
        h.Reload();
        var slow = h.Next(0)!;
        h.Tick(TimeSpan.FromSeconds(6));
        Assert.True(slow.Killed);

        var afterReady = h.Ready(slow);

        Assert.DoesNotContain(afterReady, i => i is Intent.Accept or Intent.Drain);
        Assert.Same(healthy, h.Active(0));
        Assert.Equal(WorkerState.Active, healthy.State);
    }

    /// <summary>Ticks until the next spawn and returns how long that took (the back-off, to the tick).</summary>
    private static TimeSpan TimeUntilNextSpawn(PolicyHarness h)
    {
        var spawns = h.Spawns.Count();
        var waited = TimeSpan.Zero;
        while (h.Spawns.Count() == spawns)
        {
            Assert.True(waited < TimeSpan.FromMinutes(2), "no spawn within two minutes");
            waited += TimeSpan.FromMilliseconds(50);
            h.Tick(TimeSpan.FromMilliseconds(50));
        }

        return waited;
    }

    private static SupervisedWorker Spawned(PolicyHarness h)
    {
        TimeUntilNextSpawn(h);
        return h.Next(0)!;
    }
}
