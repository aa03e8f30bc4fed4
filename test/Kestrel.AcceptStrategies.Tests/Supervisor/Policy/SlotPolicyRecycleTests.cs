using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Intent = Kestrel.AcceptStrategies.Supervisor.Policy.SupervisorIntent;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>Start-up, promotion and recycling decisions of the slot policy, on a fake clock with no process.</summary>
public sealed class SlotPolicyRecycleTests
{
    [Fact]
    public void Start_OneWorkerPerSlot_EachAcceptsOnceReady()
    {
        var h = new PolicyHarness();

        h.Play(h.Policy.Start(2));
        Assert.Equal([SpawnReason.Initial, SpawnReason.Initial], h.Spawns.Select(s => s.Reason));
        Assert.Equal([0, 1], h.Spawns.Select(s => s.Slot.Index));
        Assert.False(h.Policy.AllActive);

        var accepted = h.Policy.Workers.ToList().SelectMany(h.Ready).OfType<Intent.Accept>().Select(a => a.Worker);

        Assert.Equal(h.Policy.Workers, accepted);
        Assert.True(h.Policy.AllActive);
        Assert.True(h.Policy.Steady);
    }

    [Fact]
    public void Budget_ReplacementStartsBeforeItIsSpent_TakesOverOnlyWhenSpent()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxRequestsPerWorker, o.MinRequestsPerWorker) = (1, 1000, 1000));
        h.StartAll(TimeSpan.FromSeconds(1));
        var old = h.Active(0);

        // 500 requests/s: with a start-up of 1 s the replacement must start about 750 requests before the end.
        long requests = 0;
        while (!h.Spawns.Any(s => s.Reason == SpawnReason.Recycle))
        {
            requests += 50;
            Assert.True(requests < 1000, "no replacement before the budget was spent");
            h.Time.Advance(TimeSpan.FromMilliseconds(100));
            h.Heartbeat(old, requests);
        }

        Assert.InRange(requests, 200, 450);
        var replacement = h.Next(0)!;
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.DoesNotContain(h.Ready(replacement), i => i is Intent.Accept);
        Assert.Equal(WorkerState.Standby, replacement.State);

        var handover = h.BudgetSpent(old);

        Assert.Equal([new Intent.Accept(replacement), new Intent.Drain(old, WorkerExitReason.Recycled)], handover);
        Assert.Same(replacement, h.Active(0));
    }

    [Fact]
    public void Budget_ReplacementNotReady_OldWorkerServesPastItsBudget()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxRequestsPerWorker, o.MinRequestsPerWorker) = (1, 100, 100));
        h.StartAll();
        var old = h.Active(0);

        h.BudgetSpent(old);

        Assert.Single(h.Spawns, s => s.Reason == SpawnReason.Recycle);
        Assert.Same(old, h.Active(0));
        Assert.DoesNotContain(h.Intents, i => i is Intent.Drain);
    }

    [Fact]
    public void SpawnInterval_TwoSlotsSpentTogether_SecondReplacementWaitsTheInterval()
    {
        var h = new PolicyHarness(o => (o.MaxRequestsPerWorker, o.MinRequestsPerWorker, o.SpawnInterval) = (100, 100, TimeSpan.FromSeconds(10)));
        h.StartAll();

        // The first set starts together; the interval counts from its start.
        h.Tick(TimeSpan.FromSeconds(9));

        h.BudgetSpent(h.Active(0));
        h.BudgetSpent(h.Active(1));
        Assert.Single(h.Spawns, s => s.Reason == SpawnReason.Recycle);

        h.Tick(TimeSpan.FromSeconds(9));
        Assert.Single(h.Spawns, s => s.Reason == SpawnReason.Recycle);

        h.Tick(TimeSpan.FromSeconds(1));
        Assert.Equal([0, 1], h.Spawns.Where(s => s.Reason == SpawnReason.Recycle).Select(s => s.Slot.Index));
    }

    [Fact]
    public void Budget_DrawnWithinMinAndMax_ZeroMeansUnlimited()
    {
        var limited = new PolicyHarness(o => (o.Workers, o.MaxRequestsPerWorker, o.MinRequestsPerWorker) = (64, 40, 20));
        limited.Play(limited.Policy.Start(64));
        var unlimited = new PolicyHarness();
        unlimited.Play(unlimited.Policy.Start(2));

        Assert.All(limited.Spawns, s => Assert.InRange(s.Budget, 20, 40));
        Assert.True(limited.Spawns.Select(s => s.Budget).Distinct().Count() > 1, "no jitter");
        Assert.All(unlimited.Spawns, s => Assert.Equal(0, s.Budget));
    }

    [Fact]
    public void DrainingCap_TwoOldWorkersStillDraining_NoThirdRecycleUntilOneExits()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxRequestsPerWorker, o.MinRequestsPerWorker) = (1, 100, 100));
        h.StartAll();
        var drained = new List<SupervisedWorker>();
        for (var i = 0; i < 2; i++)
        {
            var old = h.Active(0);
            h.BudgetSpent(old);
            h.Ready(h.Next(0)!);
            drained.Add(old);
        }

        Assert.All(drained, w => Assert.Equal(WorkerState.Draining, w.State));
        var spawns = h.Spawns.Count();
        h.BudgetSpent(h.Active(0));
        h.Tick(TimeSpan.FromSeconds(1));
        Assert.Equal(spawns, h.Spawns.Count());

        h.Exit(drained[0]);

        Assert.Equal(spawns + 1, h.Spawns.Count());
        Assert.Equal(SpawnReason.Recycle, h.Spawns.Last().Reason);
    }

    [Fact]
    public void Crash_ActiveWorkerDiesAfterReady_RespawnedAtOnce()
    {
        var h = new PolicyHarness();
        h.StartAll();
        h.Tick(SlotPolicy.StableAfterReady);
        var victim = h.Active(1);

        h.Exit(victim, 9, out var reason);

        Assert.Equal(WorkerExitReason.Crashed, reason);
        Assert.Equal(SpawnReason.Respawn, h.Spawns.Last().Reason);
        Assert.Equal(1, h.Spawns.Last().Slot.Index);
    }
}
