using System.Globalization;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>A new worker's warm-up request reaches its own Kestrel only, without a port anyone else could use.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerWarmupTests
{
    [Fact]
    public async Task Warmup_WhileRunning_WorkerListensOnNoTcpPortButTheInheritedOnes()
    {
        var supervisor = ChildProcess.StartBenchmarkAppWithJsonLogs(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 \"--WorkerProcesses:WarmupPath=/slow?ms=3000\" " +
            "--Logging:LogLevel:Kestrel.AcceptStrategies.Worker=Debug"); // the warm-up's line (event 20) is Debug
        await using var owned = supervisor;
        var address = await supervisor.WaitForListeningAsync();

        // The warm-up request is running in the app: the worker named in that line is warming up right now.
        var started = await supervisor.WaitForLineAsync(l => l.StartsWith("slow: started in ", StringComparison.Ordinal), TestServer.Timeout);
        var worker = int.Parse(started.Split(' ')[3], CultureInfo.InvariantCulture);
        var listening = ListeningPorts(worker);

        await supervisor.WaitForEventAsync(
            LogEvents.WorkerWarmedUp, e => e.Int("Pid") == worker && e["Path"] == "/slow?ms=3000" && e.Int("StatusCode") == 200, TestServer.Timeout);
        Assert.NotEmpty(listening);
        Assert.All(listening, port => Assert.Equal(address.Port, port));
        Assert.Equal("done", await Load.GetAsync(new Uri(address, "/slow?ms=1")));
    }

    [Fact]
    public async Task Warmup_PlainHttp_AnsweredWithoutLoadingAnHttpClient()
    {
        // An HttpClient for one request would JIT a whole client stack in every new worker, for nothing after.
        await using var group = await WorkerGroup.StartAsync(
            1, AcceptStrategy.ReusePort, "\"--WorkerProcesses:WarmupPath=/foo?foo=warm\" --Logging:LogLevel:Kestrel.AcceptStrategies.Worker=Debug");
        var worker = group.Ready[0].Pid;

        // The worker logs through its own console queue: its line may come after the supervisor's ready line.
        await group.WaitUntilAsync(g => g.EventsOf(LogEvents.WorkerWarmedUp).Count > 0, TestServer.Timeout, "the warm-up logged");
        var warmedUp = Assert.Single(group.EventsOf(LogEvents.WorkerWarmedUp));
        Assert.Equal(worker, warmedUp.Int("Pid"));
        Assert.Equal(200, warmedUp.Int("StatusCode"));
        var loaded = File.ReadAllLines($"/proc/{worker}/maps");
        Assert.DoesNotContain(loaded, line => line.EndsWith("/System.Net.Http.dll", StringComparison.Ordinal));
        Assert.Contains(loaded, line => line.EndsWith("/System.Net.Sockets.dll", StringComparison.Ordinal));
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(group.Address, "/foo?foo=bar")));
    }

    [Theory]
    [InlineData(60_000, 2_000, 53_000)] // a margin of 5 s at most
    [InlineData(8_000, 1_000, 5_000)] // else a quarter of the timeout
    [InlineData(8_000, 6_000, 0)] // nothing left
    [InlineData(8_000, null, 6_000)] // the spawn time unknown: counted from now
    public void WarmupBudget_WhatTheSupervisorsStartTimeoutLeaves(int timeoutMs, int? sinceSpawnMs, int expectedMs) =>
        Assert.Equal(
            TimeSpan.FromMilliseconds(expectedMs),
            Kestrel.AcceptStrategies.Worker.WorkerWarmup.WarmupBudget(
                TimeSpan.FromMilliseconds(timeoutMs), sinceSpawnMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null));

    [Fact]
    public async Task Warmup_SlowerThanTheStartTimeoutLeaves_GivenUp_WorkerReportsReadyAndIsNotKilled()
    {
        // The supervisor counts WorkerStartTimeout from the spawn; the warm-up once had all of it from later on, so a
        // slow warm-up path always got the worker killed as failed to start, and its slot backed off for good.
        var supervisor = ChildProcess.StartBenchmarkAppWithJsonLogs(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 \"--WorkerProcesses:WarmupPath=/slow?ms=60000\" --WorkerProcesses:WorkerStartTimeout=00:00:08");
        await using var owned = supervisor;
        var address = await supervisor.WaitForListeningAsync();

        var ready = await supervisor.WaitForEventAsync(LogEvents.WorkerReady, null, TestServer.Timeout);
        var failed = await supervisor.WaitForEventAsync(LogEvents.WorkerWarmupFailed, null, TestServer.Timeout);
        Assert.Equal(ready.Int("Pid"), failed.Int("Pid"));
        Assert.DoesNotContain(supervisor.Events, e => e.EventId == LogEvents.WorkerExited);
        Assert.Equal("done", await Load.GetAsync(new Uri(address, "/slow?ms=1")));
    }

    /// <summary>Local ports of the listening TCP sockets <paramref name="pid"/> holds (by inode, from /proc).</summary>
    private static List<int> ListeningPorts(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    inodes.Add(target[8..^1]);
                }
            }
            catch (IOException)
            {
                // Closed meanwhile.
            }
        }

        var ports = new List<int>();
        foreach (var table in new[] { "tcp", "tcp6" })
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/net/{table}").Skip(1))
            {
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields[3] == "0A" && inodes.Contains(fields[9]))
                {
                    ports.Add(int.Parse(fields[1].Split(':')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                }
            }
        }

        return ports;
    }
}
