using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// SIGHUP and scaling signals against a real supervisor: what a reload must replace, what it re-reads, and how it
/// behaves when the new code cannot start.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SupervisorReloadTests
{
    [Fact]
    public async Task Sighup_ReplacementCrashesAtStart_BacksOffWhileOldWorkersServe()
    {
        using var app = AppCopy.Create(Settings(new JsonObject { ["Workers"] = 2, ["RespawnBackoff"] = "00:00:01" }));
        await using var group = await WorkerGroup.StartAsync(app, 2);
        var first = group.Ready.Select(r => r.Pid).ToList();

        // A deploy whose workers die at start: the slot being reloaded keeps its old worker and retries with back-off.
        app.Update(new JsonObject { ["CrashWorkerAtStart"] = true });
        group.Signal("HUP");
        await group.WaitUntilAsync(g => Reloads(g) >= 1, TestServer.Timeout, "a first reload attempt");
        var firstAttempt = Stopwatch.GetTimestamp();
        await group.WaitUntilAsync(g => Reloads(g) >= 4, TimeSpan.FromSeconds(60), "four reload attempts");
        var elapsed = Stopwatch.GetElapsedTime(firstAttempt);

        // Attempts 2, 3 and 4 each wait out a back-off of 1 s, 2 s and 4 s after the previous one failed.
        Assert.True(elapsed >= TimeSpan.FromSeconds(6.9), $"four attempts within {elapsed.TotalSeconds:0.00} s: back-off skipped.\n{group.Supervisor.Output}");
        Assert.All(first, pid => Assert.True(WorkerGroup.IsRunning(pid), $"old worker {pid} is gone"));
        for (var i = 0; i < 10; i++)
        {
            var answer = await Load.GetAsync(new Uri(group.Address, "/whoami"));
            Assert.Contains(int.Parse(answer.Split(' ')[1], CultureInfo.InvariantCulture), first);
        }
    }

    [Fact]
    public async Task Sigttou_DuringReload_LaterSighupStillReloads()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort);

        group.Signal("HUP");
        await group.WaitUntilAsync(g => g.Started.Any(s => s.Reason == "reload" && s.Slot == 0), TestServer.Timeout, "slot 0 reloading");
        group.Signal("TTOU");
        await group.WaitUntilAsync(
            g => g.Exited.Any(e => e.Slot == 1 && e.Reason == "scaled") && g.Exited.Any(e => e.Slot == 0 && e.Reason == "reload"),
            TestServer.Timeout,
            "slot 1 removed and slot 0 reloaded");

        // The removed slot must not stay queued for reload and block every later SIGHUP.
        var reloads = Reloads(group);
        group.Signal("HUP");
        await group.WaitUntilAsync(g => Reloads(g) > reloads && g.Exited.Count(e => e.Slot == 0 && e.Reason == "reload") >= 2, TestServer.Timeout, "a second reload of slot 0");
        Assert.Single(group.LivePids);
    }

    [Fact]
    public async Task Sighup_StandbyStartedBeforeSignal_IsReplacedNotPromoted()
    {
        // One worker under steady, paced load (~400 requests/s): its replacement starts early (request rate times
        // start-up time before the budget runs out) and stands by; the load stops as soon as it starts, with hundreds
        // of requests of the budget left.
        await using var group = await WorkerGroup.StartAsync(
            1, AcceptStrategy.ReusePort, "--WorkerProcesses:MaxRequestsPerWorker=1500 --WorkerProcesses:MinRequestsPerWorker=1500");
        using (var stop = new CancellationTokenSource())
        using (var client = Load.CreateClient())
        {
            var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Assert.Equal("done", await client.GetStringAsync(new Uri(group.Address, "/slow?ms=10")));
                }
            })).ToList();
            await group.WaitUntilAsync(g => g.Started.Any(s => s.Reason == "recycle"), TimeSpan.FromSeconds(60), "a recycle replacement started");
            await stop.CancelAsync();
            await Task.WhenAll(clients).WaitAsync(TestServer.Timeout);
        }

        var standby = group.Started.Single(s => s.Reason == "recycle");
        await group.WaitUntilAsync(g => g.Ready.Any(r => r.Pid == standby.Pid), TestServer.Timeout, "the replacement standing by");
        var original = group.Ready[0].Pid;

        // Still standing by: the first worker is the one accepting (its budget is not spent).
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(original, PidOf(await Load.GetAsync(new Uri(group.Address, "/whoami"))));
        }

        group.Signal("HUP");
        await group.WaitUntilAsync(g => g.Exited.Any(e => e.Pid == original), TestServer.Timeout, "the first worker replaced");
        await group.WaitUntilAsync(g => g.Exited.Any(e => e.Pid == standby.Pid), TestServer.Timeout, "the standby gone");

        // Everything started before the signal went; the slot runs a worker started by the reload.
        var pid = PidOf(await Load.GetAsync(new Uri(group.Address, "/whoami")));
        Assert.Contains(group.Started, s => s.Pid == pid && s.Reason == "reload");
        Assert.Contains(group.Exited, e => e.Pid == standby.Pid && e.Reason == "superseded");
    }

    [Fact]
    public async Task Sighup_ConfigurationChanged_WorkersAndBudgetReread_InvalidOneIgnored()
    {
        using var app = AppCopy.Create(Settings(new JsonObject { ["Workers"] = 2 }));
        await using var group = await WorkerGroup.StartAsync(app, 2);
        Assert.All(group.Started, s => Assert.Equal(0, s.Budget));

        app.Update(Settings(new JsonObject { ["Workers"] = 3, ["MaxRequestsPerWorker"] = 50000 }));
        group.Signal("HUP");
        await group.WaitUntilAsync(
            g => g.Ready.Any(r => r.Slot == 2) && g.Exited.Count(e => e.Reason == "reload") == 2, TestServer.Timeout, "three workers on the new settings");
        Assert.Equal(3, group.LivePids.Count);
        Assert.All(group.Started.Where(s => s.Reason is "reload" or "scaled"), s => Assert.InRange(s.Budget, 45000, 50000));

        // A broken edit is refused as a whole; the workers keep running.
        var started = group.Started.Count;
        app.Update(Settings(new JsonObject { ["Workers"] = 1, ["MaxRequestsPerWorker"] = -5 }));
        group.Signal("HUP");
        await group.WaitUntilAsync(g => g.EventsOf(LogEvents.ReloadRejected).Count > 0, TestServer.Timeout, "the invalid reload refused");
        Assert.Contains("MaxRequestsPerWorker = -5", group.EventsOf(LogEvents.ReloadRejected)[0]["Errors"], StringComparison.Ordinal);
        Assert.Equal(started, group.Started.Count);
        Assert.Equal(3, group.LivePids.Count);
    }

    [Fact]
    public async Task Sighup_AcceptorsChanged_LoggedForRestartAndNewWorkersKeepTheSupervisorsValue()
    {
        static JsonObject Config(int acceptors) => new()
        {
            ["AcceptStrategy"] = new JsonObject { ["Strategy"] = "ThunderingHerd", ["Acceptors"] = acceptors },
            ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1 },
        };

        // Debug: each worker's listener logs how many acceptors it runs (event 1).
        using var app = AppCopy.Create(Config(2));
        await using var group = await WorkerGroup.StartAsync(app, 1, "--Logging:LogLevel:Kestrel.AcceptStrategies.Listeners=Debug");
        var first = group.Ready[0].Pid;

        // The supervisor's sockets and lock were made for its Acceptors: the log says a restart applies the change, and
        // the reloaded worker does what the log says.
        app.Update(Config(3));
        group.Signal("HUP");
        await group.WaitUntilAsync(g => g.Exited.Any(e => e.Pid == first) && g.EventsOf(LogEvents.ListenerBound).Count == 2, TestServer.Timeout, "the first worker replaced");
        var needsRestart = Assert.Single(group.EventsOf(LogEvents.ReloadNeedsRestart));
        Assert.Equal("Acceptors", needsRestart["Option"]);
        Assert.All(group.EventsOf(LogEvents.ListenerBound), bound => Assert.Equal("2", bound["Acceptors"]));
        Assert.Equal(group.Started.Single(s => s.Reason == "reload").Pid, PidOf(await Load.GetAsync(new Uri(group.Address, "/whoami"))));
    }

    private static int PidOf(string whoami) => int.Parse(whoami.Split(' ')[1], CultureInfo.InvariantCulture);

    private static int Reloads(WorkerGroup group) => group.Started.Count(s => s.Reason == "reload");

    private static JsonObject Settings(JsonObject workers) => new() { ["WorkerProcesses"] = workers };
}
