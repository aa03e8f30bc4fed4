using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Supervisor.Processes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>MaxWorkerLifetime and MaxWorkerMemoryMegabytes with real workers under load: warm replacement, no failure.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerLimitTests(ITestOutputHelper output)
{
    private const long Megabyte = 1024 * 1024;

    [Fact]
    public async Task Lifetime_3s_EverySlotRecycledRepeatedly_NoFailedRequest()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, "--WorkerProcesses:MaxWorkerLifetime=00:00:03");

        using var enough = new CancellationTokenSource();
        var load = Load.RunUntilAsync(group.Address, 8, connectionClose: false, TimeSpan.FromSeconds(90), enough.Token);
        try
        {
            await group.WaitUntilAsync(
                g => Enumerable.Range(0, 2).All(slot => g.Exited.Count(e => e.Slot == slot && e.Reason == "lifetime") >= 2),
                TimeSpan.FromSeconds(80),
                "two lifetime recycles in each slot");
        }
        finally
        {
            await enough.CancelAsync();
        }

        var (completed, failures) = await load;
        output.WriteLine($"{completed} requests; lifetime recycles per slot: {string.Join(", ", group.Exited.Where(e => e.Reason == "lifetime").GroupBy(e => e.Slot).Select(g => $"{g.Key}: {g.Count()}"))}");
        Assert.Empty(failures);
        Assert.True(completed > 0);
        Assert.DoesNotContain(group.Exited, e => e.Reason is not ("lifetime" or "stopped"));
        Assert.Contains(group.Started, s => s.Reason == "recycle");
    }

    [Fact]
    public async Task Memory_200MB_LeakingWorkerRecycledBeforeItGrowsFar_NoFailedRequest()
    {
        await using var group = await WorkerGroup.StartAsync(
            1, AcceptStrategy.ReusePort, "--WorkerProcesses:MaxWorkerMemoryMegabytes=200 --RetainBytesPerRequest=20000");

        // Sample every worker's VmRSS while the load runs, as the kernel counts it.
        using var done = new CancellationTokenSource();
        long peak = 0;
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                foreach (var pid in group.LivePids)
                {
                    peak = Math.Max(peak, ResidentMemory.Read(pid) ?? 0);
                }

                await Task.Delay(50, CancellationToken.None);
            }
        });

        // Paced (20 clients, 20 ms a request) so a replacement's start-up is not outgrown: ~1,000 requests/s leak
        // ~20 MB/s, and the leaking worker serves until its replacement is ready.
        var failures = await Load.RunAsync(group.Address, 30_000, 20, connectionClose: false, _ => "/slow?ms=20", "done", TimeSpan.FromMinutes(3));
        await done.CancelAsync();
        await sampler;

        output.WriteLine($"peak worker VmRSS {peak / Megabyte} MB; exits: {string.Join(", ", group.Exited.Select(e => $"{e.Reason} after {e.Requests} requests"))}");
        Assert.Empty(failures);
        var memory = group.Exited.Count(e => e.Reason == "memory");
        Assert.True(memory >= 2, $"{memory} memory recycles over 30,000 requests leaking 20 KB each.\n{group.Supervisor.Output}");
        Assert.DoesNotContain(group.Exited, e => e.Reason is not ("memory" or "stopped"));
        Assert.True(peak < 320 * Megabyte, $"a worker reached {peak / Megabyte} MB resident with a 200 MB limit");
        Assert.NotEmpty(group.EventsOf(LogEvents.WorkerOverMemory));
    }

    [Fact]
    public async Task Sighup_LifetimeAndMemoryReread_NewWorkersRecycledByLifetime()
    {
        using var app = AppCopy.Create(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1 } });
        await using var group = await WorkerGroup.StartAsync(app, 1);

        app.Update(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1, ["MaxWorkerLifetime"] = "00:00:02", ["MaxWorkerMemoryMegabytes"] = 4096 } });
        group.Signal("HUP");
        await group.WaitUntilAsync(g => g.Exited.Any(e => e.Reason == "lifetime"), TimeSpan.FromSeconds(60), "a lifetime recycle after the reload");

        var changes = Assert.Single(group.EventsOf(LogEvents.ConfigurationReloaded))["Changes"];
        Assert.Contains("MaxWorkerLifetime 00:00:00 -> 00:00:02", changes, StringComparison.Ordinal);
        Assert.Contains("MaxWorkerMemoryMegabytes 0 -> 4096", changes, StringComparison.Ordinal);
    }
}
