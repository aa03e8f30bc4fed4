using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Intent = Kestrel.AcceptStrategies.Supervisor.Policy.SupervisorIntent;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Policy;

/// <summary>Reload (SIGHUP), scaling (SIGTTIN/SIGTTOU) and stop decisions of the slot policy, with no process.</summary>
public sealed class SlotPolicyReloadTests
{
    [Fact]
    public void Reload_ThreeSlots_OneAtATimeEachDrainedOnlyAfterItsReplacementAccepts()
    {
        var h = new PolicyHarness(o => o.Workers = 3);
        h.StartAll();
        var first = Enumerable.Range(0, 3).Select(h.Active).ToList();

        h.Reload();
        for (var slot = 0; slot < 3; slot++)
        {
            var reloads = h.Spawns.Where(s => s.Reason == SpawnReason.Reload).ToList();
            Assert.Equal(slot + 1, reloads.Count);
            Assert.Equal(slot, reloads[^1].Slot.Index);
            Assert.DoesNotContain(h.Intents, i => i is Intent.Drain d && d.Worker == first[slot]);

            var handover = h.Ready(h.Next(slot)!);

            Assert.Equal(new Intent.Drain(first[slot], WorkerExitReason.Reload), handover[1]);
            Assert.IsType<Intent.Accept>(handover[0]);
        }

        Assert.Equal(3, h.Spawns.Count(s => s.Reason == SpawnReason.Reload));
        Assert.True(h.Policy.Steady || h.Policy.Workers.Any(w => w.State == WorkerState.Draining));
    }

    [Fact]
    public void Reload_StandbyStartedBeforeTheSignal_SupersededNotPromoted()
    {
        var h = new PolicyHarness(o => (o.Workers, o.MaxRequestsPerWorker, o.MinRequestsPerWorker) = (1, 100, 100));
        h.StartAll();
        h.Heartbeat(h.Active(0), 99);
        var standby = h.Next(0)!;
        h.Ready(standby);
        Assert.Equal(WorkerState.Standby, standby.State);

        h.Reload();

        Assert.Contains(new Intent.Kill(standby, WorkerExitReason.Superseded, "started before the reload signal"), h.Intents);
        var reload = h.Spawns.Last();
        Assert.Equal(SpawnReason.Reload, reload.Reason);
        Assert.NotSame(standby, h.Next(0));
        h.Exit(standby, status: 9, out var reason);
        Assert.Equal(WorkerExitReason.Superseded, reason);
    }

    [Fact]
    public void ScaleDown_DuringReload_RemovedSlotLeavesTheQueueAndLaterReloadsWork()
    {
        var h = new PolicyHarness();
        h.StartAll();
        var (zero, one) = (h.Active(0), h.Active(1));
        h.Reload();

        Assert.True(h.Policy.TryScaleDown(out var scaled));
        h.Play(scaled);
        Assert.Contains(new Intent.Drain(one, WorkerExitReason.Scaled), h.Intents);
        Assert.Contains(new Intent.ReleaseSlot(1), h.Intents);

        h.Ready(h.Next(0)!);
        h.Exit(zero);
        h.Exit(one);
        Assert.Single(h.Spawns, s => s.Reason == SpawnReason.Reload);

        // A later SIGHUP is not stuck behind the removed slot.
        h.Reload();
        Assert.Equal(2, h.Spawns.Count(s => s.Reason == SpawnReason.Reload && s.Slot.Index == 0));
        Assert.Equal(1, h.Policy.LiveSlots);
    }

    [Fact]
    public void ScaleUp_DuringReload_NewSlotStartsAtOnceAndIsNotReloaded()
    {
        var h = new PolicyHarness();
        h.StartAll();
        h.Reload();

        h.Play(h.Policy.ScaleUp());

        var scaled = Assert.Single(h.Spawns, s => s.Reason == SpawnReason.Scaled);
        Assert.Equal(2, scaled.Slot.Index);
        h.Ready(h.Next(2)!);
        h.Ready(h.Next(0)!);
        h.Ready(h.Next(1)!);
        Assert.Equal([0, 1], h.Spawns.Where(s => s.Reason == SpawnReason.Reload).Select(s => s.Slot.Index));
        Assert.True(h.Policy.AllActive);
    }

    [Fact]
    public void ScaleDown_OneWorker_Refused()
    {
        var h = new PolicyHarness(o => o.Workers = 1);
        h.StartAll();

        Assert.False(h.Policy.TryScaleDown(out var intents));
        Assert.Empty(intents);
    }

    [Fact]
    public void Reload_NewWorkerCount_SlotsAddedOrRemovedHighestFirst()
    {
        var h = new PolicyHarness(o => o.Workers = 3);
        h.StartAll();
        var two = h.Active(2);

        h.Reload(workers: 2);

        Assert.Contains(new Intent.Drain(two, WorkerExitReason.Scaled), h.Intents);
        Assert.Equal(2, h.Policy.LiveSlots);

        h.Reload(workers: 4);
        Assert.Equal(4, h.Policy.LiveSlots);
        Assert.Equal([2, 3], h.Spawns.Where(s => s.Reason == SpawnReason.Scaled).Select(s => s.Slot.Index));
    }

    [Fact]
    public void Stop_ClosesListenersKillsStartingDrainsAccepting_ThenNothingStarts()
    {
        var h = new PolicyHarness(o => (o.MaxRequestsPerWorker, o.MinRequestsPerWorker) = (100, 100));
        h.StartAll();
        h.BudgetSpent(h.Active(0));
        var starting = h.Next(0)!;

        var stop = h.Play(h.Policy.Stop());

        Assert.Contains(stop, i => i is Intent.CloseListeners);
        Assert.Contains(stop, i => i is Intent.Kill k && k.Worker == starting && k.Reason == WorkerExitReason.Stopped);
        Assert.Equal(2, stop.OfType<Intent.Drain>().Count(d => d.Reason == WorkerExitReason.Stopped));
        var spawns = h.Spawns.Count();
        foreach (var worker in h.Policy.Workers.ToList())
        {
            h.Exit(worker);
        }

        h.Tick(TimeSpan.FromSeconds(5));
        Assert.Equal(spawns, h.Spawns.Count());
        Assert.Empty(h.Policy.Workers);
    }
}
