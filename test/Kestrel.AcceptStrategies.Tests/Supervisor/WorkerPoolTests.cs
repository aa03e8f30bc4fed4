using System.Diagnostics;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>The adaptive pool (MaxWorkers, MinSpareWorkers, MaxSpareWorkers) with real workers under real load.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerPoolTests(ITestOutputHelper output)
{
    private const string Pool = "--WorkerProcesses:MaxWorkers=4 --WorkerProcesses:MinSpareWorkers=1 --WorkerProcesses:MaxSpareWorkers=1";

    // ReusePort with net.ipv4.tcp_migrate_req at its default of 0: the supervisor steers new connections away from a
    // slot before its worker drains, and keeps the slot's sockets, so nothing queued on them is reset.
    [Theory]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task Pool1To4_GrowsToAtLeast3UnderLoad_ShrinksToAtMost2Within40sAfter_NoFailedRequest(AcceptStrategy strategy)
    {
        await using var group = await WorkerGroup.StartAsync(1, strategy, Pool);

        // Saturating without CPU (client and workers share two cores): 16 clients each keep a 100 ms request in flight
        // on a new connection each, so every accepting worker gets its share and nearly always has one in flight.
        using var enough = new CancellationTokenSource();
        var load = Load.RunUntilAsync(
            group.Address, 16, connectionClose: true, TimeSpan.FromSeconds(100), enough.Token, path: (c, i) => $"/slow?ms=100&c={c}&i={i}", expectedBody: "done");
        var growing = Stopwatch.StartNew();
        try
        {
            await group.WaitUntilAsync(g => Size(g) >= 3 && g.Ready.Count >= 3, TimeSpan.FromSeconds(90), "the pool grown to 3 ready workers");
        }
        finally
        {
            await enough.CancelAsync();
        }

        var grownIn = growing.Elapsed;
        var (completed, failures) = await load;
        Assert.Empty(failures);

        // One sequential client keeps new connections arriving while workers drain: none may be lost.
        var shrinking = Stopwatch.StartNew();
        using var shrunk = new CancellationTokenSource();
        var light = Load.RunUntilAsync(group.Address, 1, connectionClose: true, TimeSpan.FromSeconds(60), shrunk.Token);
        try
        {
            await group.WaitUntilAsync(g => Size(g) <= 2, TimeSpan.FromSeconds(40), "the pool shrunk to 2 within 40 s of the load's end");
        }
        finally
        {
            await shrunk.CancelAsync();
        }

        var shrunkIn = shrinking.Elapsed;
        var (lightCompleted, lightFailures) = await light;
        Assert.Empty(lightFailures);

        var grown = group.EventsOf(LogEvents.PoolGrown);
        var shrinks = group.EventsOf(LogEvents.PoolShrunk);
        output.WriteLine(
            $"{strategy}: grew to {grown.Max(e => e.Int("To"))} in {grownIn.TotalSeconds:0.0} s ({completed} requests), shrank to {Size(group)} in {shrunkIn.TotalSeconds:0.0} s ({lightCompleted} requests meanwhile)");
        foreach (var e in grown.Concat(shrinks))
        {
            output.WriteLine($"  {e.EventId}: {e["From"]} -> {e["To"]}, spare {e["Spare"]}, {e["Reason"]}");
        }

        // Grown one at a time, and the drained worker is the one named, ending as scaled once it finished its requests.
        Assert.All(grown, e => Assert.Equal(e.Int("From") + 1, e.Int("To")));
        var drained = shrinks.Select(e => e.Int("Pid")).ToList();
        await group.WaitUntilAsync(g => drained.All(pid => g.Exited.Any(x => x.Pid == pid)), TestServer.Timeout, "the drained workers' exits");
        Assert.All(drained, pid => Assert.Equal("scaled", group.Exited.Single(x => x.Pid == pid).Reason));
        Assert.DoesNotContain(group.Exited, e => e.Reason is "crashed" or "hung" or "failed_to_start");
    }

    [Fact]
    public async Task Sigttin_WithThePoolOn_StopsAtMaxWorkers()
    {
        // MinSpareWorkers 0 and MaxSpareWorkers 2: two idle workers neither grow nor shrink the pool by themselves.
        await using var group = await WorkerGroup.StartAsync(
            1, AcceptStrategy.ThunderingHerd, "--WorkerProcesses:MaxWorkers=2 --WorkerProcesses:MinSpareWorkers=0 --WorkerProcesses:MaxSpareWorkers=2");

        group.Signal("TTIN");
        await group.WaitUntilAsync(g => g.Ready.Count >= 2 && g.LivePids.Count == 2, TestServer.Timeout, "a second worker");
        group.Signal("TTIN");
        await group.WaitUntilAsync(
            g => g.EventsOf(LogEvents.SignalReceived).Any(e => e["Action"] == "ignored: 2 workers is the maximum"), TestServer.Timeout, "the second SIGTTIN refused");

        Assert.Equal(2, group.Started.Count);
        Assert.Empty(await Load.RunAsync(group.Address, 200, 10, connectionClose: true));
    }

    /// <summary>The pool's size after its last change, from the supervisor's log (1 before any).</summary>
    private static int Size(WorkerGroup group) =>
        group.Events.LastOrDefault(e => e.EventId is LogEvents.PoolGrown or LogEvents.PoolShrunk && e.Category.StartsWith("Kestrel.AcceptStrategies", StringComparison.Ordinal))?.Int("To") ?? 1;
}
