using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// A real supervisor under conditions an operator or an attacker creates: paused, stopped while starting, out of
/// descriptors, its workers' drains held open by clients.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SupervisorRobustnessTests
{
    [Fact]
    public async Task SupervisorPaused_LongerThanHangTimeout_NoHealthyWorkerKilled()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, "--WorkerProcesses:HangTimeout=00:00:03");
        var first = group.Ready.Select(r => r.Pid).ToList();

        // The pause is the scenario itself: the supervisor runs nothing for longer than the hang timeout.
        group.Signal("STOP");
        await Task.Delay(TimeSpan.FromSeconds(5));
        group.Signal("CONT");

        // A worker added afterwards is ready only after many ticks of the loop: any hang verdict has been given by then.
        group.Signal("TTIN");
        await group.WaitUntilAsync(g => g.Ready.Any(r => r.Slot == 2), TestServer.Timeout, "a third worker after the pause");
        Assert.DoesNotContain(group.Exited, e => e.Reason == "hung");
        Assert.All(first, pid => Assert.True(WorkerGroup.IsRunning(pid), $"worker {pid} was killed"));
    }

    [Fact]
    public async Task Sigterm_ListeningSocketsClosedAtOnce_NewClientsRefusedWhileWorkersDrain()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort);
        using var client = Load.CreateClient();
        var slow = client.GetStringAsync(new Uri(group.Address, "/slow?ms=5000"));
        await group.WaitUntilAsync(g => g.Supervisor.Output.Contains("slow: started", StringComparison.Ordinal), TestServer.Timeout, "the slow request under way");

        group.Signal("TERM");
        await group.WaitUntilAsync(g => Draining(g, "stopped") == 2, TestServer.Timeout, "both workers draining");

        // Nobody accepts any more: a new client is refused at once instead of waiting in a queue until it is reset.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync("127.0.0.1", group.Address.Port).WaitAsync(TestServer.Timeout));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.False(slow.IsCompleted, "the slow request ended before the probe: the check proved nothing");

        Assert.Equal("done", await slow.WaitAsync(TestServer.Timeout));
        await group.Supervisor.WaitForExitAsync(TestServer.Timeout);
        Assert.Equal(0, group.Supervisor.ExitCode);
    }

    [Fact]
    public async Task RequestsHeldOnEveryOldWorker_DrainingWorkersCappedPerSlot()
    {
        await using var group = await WorkerGroup.StartAsync(
            1, AcceptStrategy.ReusePort, "--WorkerProcesses:MaxRequestsPerWorker=100 --WorkerProcesses:MinRequestsPerWorker=100");
        using var client = Load.CreateClient();
        var held = new List<Task<string>>();
        for (var round = 0; round < 5; round++)
        {
            // A request the current worker must finish keeps it alive, draining, once its budget is spent. Then spend the
            // budget until the worker is recycled, or until the supervisor says it holds the recycle back (the cap).
            held.Add(client.GetStringAsync(new Uri(group.Address, "/slow?ms=15000")));
            await group.WaitUntilAsync(g => CountOf(g, "slow: started") > round, TestServer.Timeout, $"held request {round + 1} under way");
            var drains = Draining(group, "recycled");
            for (var sent = 0; Draining(group, "recycled") == drains && group.EventsOf(LogEvents.RecycleDeferred).Count == 0; sent += 50)
            {
                Assert.True(sent < 10_000, $"neither a recycle nor a deferred one after {sent} requests:\n{group.Supervisor.Output}");
                Assert.Empty(await Load.RunAsync(group.Address, 50, 4, connectionClose: true));
            }
        }

        Assert.All(await Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(60)), answer => Assert.Equal("done", answer));

        // One slot: its accepting worker, a replacement, and at most two drained ones holding requests.
        // (Before the cap: 6 here.)
        Assert.True(group.PeakAlive <= 4, $"{group.PeakAlive} workers alive at once.\n{group.Supervisor.Output}");
    }

    [Fact]
    public async Task Sigterm_DuringStartup_ExitsCleanly()
    {
        // A slow warm-up keeps the workers starting, and so the supervisor's start-up waiting, for seconds.
        var supervisor = ChildProcess.StartBenchmarkAppWithJsonLogs(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=2 --WorkerProcesses:WarmupPath=/slow?ms=4000");
        await using var _ = supervisor;
        await supervisor.WaitForEventAsync(LogEvents.WorkerStarted, e => e.Int("Slot") == 1, TestServer.Timeout);

        WorkerGroup.Kill(supervisor.Id, "TERM");
        await supervisor.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(0, supervisor.ExitCode);
        Assert.DoesNotContain("Unhandled exception", supervisor.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("TaskCanceledException", supervisor.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DescriptorsExhausted_WorkerDies_SpawnFailuresBackOffThenRecover()
    {
        // The runtime itself needs descriptors now and then: W^X double mapping for new code, and every new thread
        // (strace: /sys/devices/system/cpu/possible, a pipe, /proc/self/task/TID/comm) - a thread pool that grows
        // while none is free kills the process ("Out of memory.", seen in CI): the runtime's limit, not the supervisor's.
        // So W^X is off, the thread pool has its threads before the limit and may not add any, tiered compilation is off
        // (its background thread starts and exits as methods get hot: a start in the window killed the supervisor once
        // in CI), and the runtime gets one free descriptor, never the two a spawn's socketpair needs first.
        var environment = new Dictionary<string, string>(LogEvent.TimestampEnvironment)
        {
            ["DOTNET_EnableWriteXorExecute"] = "0",
            ["DOTNET_TieredCompilation"] = "0",
            ["DOTNET_gcServer"] = "0",
            ["DOTNET_GCgen0size"] = "0x10000000",
            ["DOTNET_ThreadPool_ForceMinWorkerThreads"] = "4",
            ["DOTNET_ThreadPool_ForceMaxWorkerThreads"] = "4",
        };
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort, "--WorkerProcesses:RespawnBackoff=00:00:01", environment);
        var supervisor = group.Supervisor.Id;

        // One respawn with descriptors first: the exit and spawn paths are then loaded and compiled, so the moment
        // without any descriptor (the exit until the first failed spawn) finds no assembly still to open.
        WorkerGroup.Kill(group.Ready[0].Pid, "KILL");
        await group.WaitUntilAsync(g => g.Ready.Any(r => r.Generation == 2), TestServer.Timeout, "a first respawn");
        var victim = group.Ready.Single(r => r.Generation == 2).Pid;

        var soft = File.ReadLines($"/proc/{supervisor}/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3];

        // No descriptor number above 2 may be allocated until the worker's own descriptors are closed and its first
        // replacement failed; then the lowest free number is the only one below the limit.
        Prlimit(supervisor, "3:");
        try
        {
            WorkerGroup.Kill(victim, "KILL");
            await group.WaitUntilAsync(g => SpawnFailures(g).Count >= 1, TestServer.Timeout, "a first failed spawn");
            Prlimit(supervisor, $"{LowestFreeDescriptor(supervisor) + 1}:");
            await group.WaitUntilAsync(g => SpawnFailures(g).Count >= 2, TestServer.Timeout, "a second failed spawn");
        }
        finally
        {
            // A supervisor that died meanwhile has nothing to restore; the output says why.
            var died = group.Supervisor.HasExited;
            if (!died)
            {
                Prlimit(supervisor, soft + ":");
            }

            Assert.False(died, $"the supervisor died short of descriptors:\n{group.Supervisor.Output}");
        }

        // The back-off (1 s), not a retry (and a stack trace) every tick; timed by the supervisor's own log clock, as a
        // busy test process may read the two lines together.
        var failures = SpawnFailures(group);
        var apart = failures[1].Timestamp!.Value - failures[0].Timestamp!.Value;
        Assert.True(apart >= TimeSpan.FromSeconds(0.95), $"two failures {apart.TotalSeconds:0.000} s apart.\n{group.Supervisor.Output}");

        await group.WaitUntilAsync(g => g.Ready.Any(r => r.Generation > 2), TimeSpan.FromSeconds(20), "the slot served again once descriptors are back");
        Assert.Equal("Worker", (await Load.GetAsync(new Uri(group.Address, "/whoami"))).Split(' ')[0]);
    }

    private static List<LogEvent> SpawnFailures(WorkerGroup group) =>
        [.. group.Supervisor.Events.Where(e => e.EventId is LogEvents.WorkerSpawnFailed or LogEvents.SupervisorEventFailed)];

    private static int Draining(WorkerGroup group, string reason) => group.EventsOf(LogEvents.WorkerDraining).Count(e => e["Reason"] == reason);

    /// <summary>Lines of the app's own output (not log events) that contain <paramref name="text"/>.</summary>
    private static int CountOf(WorkerGroup group, string text) => group.Supervisor.Lines.Count(l => l.Contains(text, StringComparison.Ordinal));

    private static int LowestFreeDescriptor(int pid)
    {
        var open = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Select(f => int.Parse(Path.GetFileName(f), CultureInfo.InvariantCulture)).ToHashSet();
        return Enumerable.Range(0, open.Count + 1).First(fd => !open.Contains(fd));
    }

    private static void Prlimit(int pid, string nofile)
    {
        using var prlimit = Process.Start("prlimit", ["--pid", pid.ToString(CultureInfo.InvariantCulture), "--nofile=" + nofile]);
        prlimit.WaitForExit(5_000);
        Assert.Equal(0, prlimit.ExitCode);
    }
}
