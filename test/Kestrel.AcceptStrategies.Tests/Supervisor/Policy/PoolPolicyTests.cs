using System.Diagnostics.Metrics;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.DependencyInjection;
using Intent = Kestrel.AcceptStrategies.Supervisor.Policy.SupervisorIntent;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>The adaptive pool's decisions on a fake clock, with workers played by <see cref="PoolSimulation"/>.</summary>
public sealed class PoolPolicyTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public void Off_MaxWorkers0_BusyOrIdle_NeverResized()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MinSpareWorkers, o.MaxSpareWorkers) = (2, 1, 1));
        var sim = new PoolSimulation(h);

        sim.Run(20 * Second, _ => 1);
        sim.Run(30 * Second, _ => 0);

        Assert.Empty(sim.Changes);
        Assert.Equal(2, h.Policy.LiveSlots);
        Assert.DoesNotContain(h.Spawns, s => s.Reason == SpawnReason.Scaled);
        AssertNoPoolTimer(h);
    }

    [Fact]
    public void Grows_UnderBusyHeartbeats_OneAtATime_SpawnIntervalApart_CappedAtMaxWorkers()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers, o.SpawnInterval) = (1, 4, 1, 1, 3 * Second));
        var sim = new PoolSimulation(h);

        sim.Run(60 * Second, _ => 1);

        Assert.Equal([2, 3, 4], sim.Changes.Select(c => c.Size));
        Assert.Equal(4, h.Policy.LiveSlots);
        Assert.Equal(3, h.Spawns.Count(s => s.Reason == SpawnReason.Scaled));
        Assert.Equal(1, sim.MostStartingAtOnce);
        var starts = h.Spawns.Where(s => s.Reason == SpawnReason.Scaled).Select(s => sim.SpawnedAt[s]).ToList();
        Assert.All(starts.Zip(starts.Skip(1)), p => Assert.True(p.Second - p.First >= 3 * Second, $"spawns {p.First} and {p.Second}"));
    }

    [Fact]
    public void Grows_NotBeforeTheLastAddedWorkerIsAcceptingAndMeasured()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (1, 4, 1, 1));
        var sim = new PoolSimulation(h) { Startup = 3 * Second };

        sim.Run(4.5 * Second, _ => 1);

        // Measured busy after 1 s (half the window): one more worker, which takes 3 s to start and 1 s to be measured.
        Assert.Equal([2], sim.Changes.Select(c => c.Size));
        Assert.InRange(sim.Changes[0].At, 0.9 * Second, 1.5 * Second);
        sim.Run(2 * Second, _ => 1);
        Assert.Equal([2, 3], sim.Changes.Select(c => c.Size));
        Assert.True(sim.Changes[1].At - sim.Changes[0].At >= 4 * Second, $"second growth {sim.Changes[1].At - sim.Changes[0].At} after the first");
    }

    [Fact]
    public void Shrinks_TheMostIdleWorker_AfterTheHold_AndAGrowthTakesItsSlotIndexAgain()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (3, 4, 1, 1));
        var sim = new PoolSimulation(h);
        // Three workers 40% busy: 1.8 spare, above 1, but 0.8 would be left without one: stable.
        sim.Run(10 * Second, _ => 0.4);
        Assert.Empty(sim.Changes);
        var idle = h.Active(1);

        // Slot 1 goes idle: 0.6 + 1 + 0.6 = 2.2 spare, and 1.2 is left without it. Held 5 s, not less (the sum passes 2
        // once its share of the 2 s window does 0.8).
        var idleFrom = sim.Elapsed;
        sim.Run(8 * Second, w => w == idle ? 0 : 0.4);

        var shrink = Assert.Single(sim.Changes);
        Assert.Equal(2, shrink.Size);
        Assert.InRange(shrink.At - idleFrom, PoolPolicy.ShrinkHold, PoolPolicy.ShrinkHold + 2 * Second);
        Assert.Contains(new Intent.Drain(idle, WorkerExitReason.Scaled), h.Intents);
        Assert.Contains(new Intent.ReleaseSlot(1), h.Intents);
        Assert.Equal([0, 2], h.Policy.Slots.Where(s => !s.Removed).Select(s => s.Index).Order());

        // 1.2 spare with two workers: stable (0.2 would be left). Then busy: the new slot fills the gap.
        sim.Run(20 * Second, _ => 0.4);
        Assert.Single(sim.Changes);
        sim.Run(1.5 * Second, _ => 1);
        Assert.Equal(3, sim.Changes[^1].Size);
        Assert.Equal(1, h.Spawns.Last().Slot.Index);
    }

    [Fact]
    public void Shrinks_AllIdle_HoldBetweenShrinks_NeverBelowOne()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (4, 4, 0, 0));
        var sim = new PoolSimulation(h);

        sim.Run(120 * Second, _ => 0);

        Assert.Equal([3, 2, 1], sim.Changes.Select(c => c.Size));
        Assert.All(sim.Changes.Zip(sim.Changes.Skip(1)), p => Assert.True(p.Second.At - p.First.At >= PoolPolicy.ShrinkHold));
        Assert.Equal(1, h.Policy.LiveSlots);
        Assert.True(h.Policy.AllActive);

        // Idle and settled: no timer left running for the pool.
        AssertNoPoolTimer(h);
    }

    [Fact]
    public void Bursts_ShorterThanTheHold_DoNotFlapThePool()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (2, 4, 1, 1));
        var sim = new PoolSimulation(h);

        // 1.5 s of every worker busy every 4 s, for a minute: the pool may grow, never shrink in between.
        sim.Run(60 * Second, _ => sim.Elapsed.TotalSeconds % 4 < 1.5 ? 1 : 0);
        Assert.All(sim.Changes, c => Assert.Equal("grow", c.Direction));

        // Then idle: it shrinks, and only shrinks, to one worker (two idle ones are 2 spare, above 1, and 1 is left).
        var grown = sim.Changes.Count;
        sim.Run(60 * Second, _ => 0);
        Assert.All(sim.Changes.Skip(grown), c => Assert.Equal("shrink", c.Direction));
        Assert.Equal(1, h.Policy.LiveSlots);
    }

    [Fact]
    public void Reload_LowersMaxWorkers_ShrinksToItWithoutTheHold()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (4, 4, 1, 4));
        var sim = new PoolSimulation(h);
        sim.Run(3 * Second, _ => 0.2);

        h.Policy.Settings = new WorkerProcessOptions { Workers = 2, MaxWorkers = 2, MinSpareWorkers = 1, MaxSpareWorkers = 4 };
        sim.Run(Second, _ => 0.2);

        // One worker per event (heartbeats): both within the first step.
        Assert.Equal([2], sim.Changes.Select(c => c.Size));
        Assert.Equal(2, h.Intents.OfType<Intent.Drain>().Count(d => d.Reason == WorkerExitReason.Scaled));
    }

    [Fact]
    public void SupervisorPaused_HeartbeatsReadTogether_NotCountedAsBusyAtOnce()
    {
        // Two workers 45% busy: 1.1 spare, above MinSpareWorkers 1, below MaxSpareWorkers 4: nothing to do.
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (2, 4, 1, 4));
        var sim = new PoolSimulation(h);
        sim.Run(5 * Second, _ => 0.45);

        // 3 s of the same load's heartbeats, read in one moment: 1.35 s of busy time each, not in that moment.
        sim.Pause(3 * Second, 0.45);
        sim.Run(3 * Second, _ => 0.45);

        Assert.Empty(sim.Changes);
    }

    [Fact]
    public void Resizes_CountedInTheMeter_ByDirectionAndReason()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<IMeterFactory>();
        var counted = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == AcceptStrategyMetrics.PoolResizesName && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            counted.Add($"{value} {string.Join(" ", tags.ToArray().Select(t => $"{t.Key}={t.Value}"))}"));
        listener.Start();
        var h = new PolicyHarness(
            o => (o.Workers, o.MaxWorkers, o.MinSpareWorkers, o.MaxSpareWorkers) = (1, 2, 1, 1),
            new AcceptStrategyMetrics(factory));
        var sim = new PoolSimulation(h);

        sim.Run(5 * Second, _ => 1);
        sim.Run(20 * Second, _ => 0);

        Assert.Equal(["1 direction=grow reason=spare_below_min", "1 direction=shrink reason=spare_above_max"], counted);
    }

    /// <summary>What is left is the hang timeout's clock on idle workers, heard from at most 7.5 s ago: 22.5 s or more.</summary>
    private static void AssertNoPoolTimer(PolicyHarness h)
    {
        var next = h.Policy.NextDeadline();
        Assert.True(next is null || h.Time.GetElapsedTime(h.Time.GetTimestamp(), next.Value) > 20 * Second, $"a timer {h.Time.GetElapsedTime(h.Time.GetTimestamp(), next ?? 0)} away");
    }
}
