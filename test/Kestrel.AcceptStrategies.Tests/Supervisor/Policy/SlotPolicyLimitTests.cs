using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Intent = Kestrel.AcceptStrategies.Supervisor.Policy.SupervisorIntent;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>MaxWorkerLifetime and MaxWorkerMemoryMegabytes: the same warm replacement as a spent request budget.</summary>
public sealed class SlotPolicyLimitTests
{
    private const long Megabyte = 1024 * 1024;

    [Fact]
    public void Lifetime_ReplacementStartsALeadTimeEarly_TakesOverAtTheEnd_ReasonLifetime()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkerLifetime) = (1, TimeSpan.FromSeconds(10)));
        h.StartAll(TimeSpan.FromSeconds(1));
        var old = h.Active(0);
        Assert.InRange(old.Lifetime, TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(10));

        // The loop sleeps until the policy's next deadline: the replacement's start, a lead time before the end.
        while (!h.Spawns.Any(s => s.Reason == SpawnReason.Recycle))
        {
            var deadline = h.Policy.NextDeadline();
            Assert.NotNull(deadline);
            Assert.True(h.Time.GetElapsedTime(old.StartedAt) < old.Lifetime, "no replacement before the lifetime ended");
            h.Tick(h.Time.GetElapsedTime(h.Time.GetTimestamp(), deadline.Value));
        }

        // Start-up measured at 1 s, lead 1.5 s.
        var left = old.Lifetime - h.Time.GetElapsedTime(old.StartedAt);
        Assert.InRange(left, TimeSpan.FromSeconds(1.4), TimeSpan.FromSeconds(1.6));

        var replacement = h.Next(0)!;
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.DoesNotContain(h.Ready(replacement), i => i is Intent.Accept);
        Assert.Equal(WorkerState.Standby, replacement.State);

        var handover = h.Tick(h.Time.GetElapsedTime(h.Time.GetTimestamp(), h.Policy.NextDeadline()!.Value));

        Assert.Equal([new Intent.Accept(replacement), new Intent.Drain(old, WorkerExitReason.Lifetime)], handover);
        Assert.InRange(h.Time.GetElapsedTime(old.StartedAt), old.Lifetime, old.Lifetime + TimeSpan.FromMilliseconds(1));
        h.Exit(old, 0, out var reason);
        Assert.Equal("lifetime", reason.Name());
    }

    [Fact]
    public void Lifetime_DrawnPerWorkerWithin90To100Percent()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkerLifetime) = (50, TimeSpan.FromSeconds(100)));
        h.StartAll();

        var lifetimes = h.Policy.Workers.Select(w => w.Lifetime).ToList();
        Assert.All(lifetimes, l => Assert.InRange(l, TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(100)));
        Assert.True(lifetimes.Distinct().Count() > 40, "lifetimes not jittered");
    }

    [Fact]
    public void Memory_OverTheLimit_ReplacedAtOnce_ReasonMemory()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxWorkerMemoryMegabytes) = (1, 200));
        h.StartAll();
        var old = h.Active(0);

        Assert.DoesNotContain(h.Play(h.Policy.MemoryMeasured(old, 200 * Megabyte)), i => i is Intent.Spawn);
        var spawned = h.Play(h.Policy.MemoryMeasured(old, 201 * Megabyte)).OfType<Intent.Spawn>();
        Assert.Equal(SpawnReason.Recycle, Assert.Single(spawned).Reason);

        // A collection brings it back under: it is still replaced, once its successor is ready.
        h.Play(h.Policy.MemoryMeasured(old, 100 * Megabyte));
        var replacement = h.Next(0)!;
        h.Time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal([new Intent.Accept(replacement), new Intent.Drain(old, WorkerExitReason.Memory)], h.Ready(replacement));
        Assert.Equal("memory", WorkerExitReason.Memory.Name());
        Assert.True(ControlMessage.TryParse("drain memory", out var drain) && drain.Reason == WorkerExitReason.Memory);
    }

    [Fact]
    public void Memory_UnderTheLimit_Nothing()
    {
        var h = new PolicyHarness(o => o.MaxWorkerMemoryMegabytes = 200);
        h.StartAll();

        for (var i = 0; i < 20; i++)
        {
            h.Time.Advance(TimeSpan.FromSeconds(1));
            h.Play(h.Policy.MemoryMeasured(h.Active(0), 199 * Megabyte));
            h.Heartbeat(h.Active(1), i * 1000);
        }

        Assert.DoesNotContain(h.Spawns, s => s.Reason == SpawnReason.Recycle);
        Assert.True(h.Policy.Steady);
    }

    [Fact]
    public void BothOff_NoRecycleWhateverTheAgeOrMemory()
    {
        var h = new PolicyHarness();
        h.StartAll();

        for (var i = 0; i < 24; i++)
        {
            h.Tick(TimeSpan.FromHours(1));
            h.Play(h.Policy.MemoryMeasured(h.Active(0), 100_000 * Megabyte));
            h.Heartbeat(h.Active(1), i * 100_000);
        }

        Assert.DoesNotContain(h.Spawns, s => s.Reason == SpawnReason.Recycle);
        Assert.All(h.Policy.Workers, w => Assert.Equal(TimeSpan.Zero, w.Lifetime));
        Assert.True(h.Policy.Steady);
    }
}
