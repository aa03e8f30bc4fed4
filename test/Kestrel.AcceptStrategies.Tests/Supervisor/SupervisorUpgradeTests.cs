using System.Globalization;
using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// SIGUSR2: the supervisor starts its successor from the executable on disk with every listening socket handed over,
/// and leaves once the successor's workers serve; a successor that cannot start leaves it serving.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SupervisorUpgradeTests
{
    [Theory]
    [InlineData(AcceptStrategy.ReusePort, AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd, AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.Serialized, AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ReusePort, AcceptStrategy.ThunderingHerd)]
    public async Task Sigusr2_UnderLoad_SuccessorServesOldSupervisorGone_NoFailedRequest(AcceptStrategy from, AcceptStrategy to)
    {
        using var app = AppCopy.Create(Settings(from, workers: 2));
        await using var group = await WorkerGroup.StartAsync(app, 2);
        var old = group.Supervisor.Id;
        if (to != from)
        {
            // Takes effect in the successor, which reads the configuration as any supervisor starting does.
            app.Update(Settings(to, workers: 2));
        }

        using var stop = new CancellationTokenSource();
        var under = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var load = Load.RunUntilAsync(group.Address, 8, connectionClose: true, TimeSpan.FromSeconds(90), stop.Token, under, progressAfter: 200);
        try
        {
            await under.Task.WaitAsync(TestServer.Timeout);
            group.Signal("USR2");
            await group.WaitUntilAsync(g => g.EventsOf(LogEvents.UpgradeCompleted).Count == 1, TestServer.Timeout, "the successor serving");
            await group.WaitForSupervisorExitAsync(TestServer.Timeout);

            // The successor alone from here on.
            Assert.Empty(await Load.RunAsync(group.Address, 200, 8, connectionClose: true));
        }
        finally
        {
            await stop.CancelAsync();
        }

        var (completed, failures) = await load;
        Assert.True(failures.Count == 0, $"{failures.Count} of {completed} failed: {string.Join("; ", failures.Take(3))}");
        Assert.Equal(0, group.Supervisor.ExitCode);

        var successor = group.EventsOf(LogEvents.UpgradeStarted).Single().Int("Pid");
        Assert.NotEqual(old, successor);
        Assert.Single(group.EventsOf(LogEvents.UpgradeTookOver));
        for (var i = 0; i < 10; i++)
        {
            var worker = int.Parse((await Load.GetAsync(new Uri(group.Address, "/whoami"))).Split(' ')[1], CultureInfo.InvariantCulture);
            Assert.Equal(successor, ParentOf(worker));
        }

        // The successor runs with the strategy it read.
        Assert.Equal(to.ToString(), group.EventsOf(LogEvents.SupervisorStarted).Single(e => e.Int("Pid") == successor)["Strategy"]);
        Assert.Empty(group.EventsOf(LogEvents.SteeringUnavailable));
    }

    [Fact]
    public async Task Sigusr2_SuccessorRefusesItsConfiguration_OldServesOn_ASecondSigusr2Succeeds()
    {
        using var app = AppCopy.Create(Settings(AcceptStrategy.ReusePort, workers: 2));
        await using var group = await WorkerGroup.StartAsync(app, 2);
        var first = group.Ready.Select(r => r.Pid).ToHashSet();

        // A bad deploy: the successor stops at its options (exit code 78) before it touches a socket.
        app.Update(Settings(AcceptStrategy.ReusePort, workers: -1));
        group.Signal("USR2");
        var failed = await group.Supervisor.WaitForEventAsync(LogEvents.UpgradeFailed, null, TestServer.Timeout);
        Assert.Contains("exit code 78", failed["Reason"], StringComparison.Ordinal);
        Assert.False(group.Supervisor.HasExited);
        Assert.Empty(await Load.RunAsync(group.Address, 200, 8, connectionClose: true));
        for (var i = 0; i < 10; i++)
        {
            var worker = int.Parse((await Load.GetAsync(new Uri(group.Address, "/whoami"))).Split(' ')[1], CultureInfo.InvariantCulture);
            Assert.Contains(worker, first);
        }

        // Fixed: the next SIGUSR2 goes through.
        app.Update(Settings(AcceptStrategy.ReusePort, workers: 2));
        group.Signal("USR2");
        await group.WaitUntilAsync(g => g.EventsOf(LogEvents.UpgradeCompleted).Count == 1, TestServer.Timeout, "the second successor serving");
        await group.WaitForSupervisorExitAsync(TestServer.Timeout);
        Assert.Empty(await Load.RunAsync(group.Address, 200, 8, connectionClose: true));
    }

    [Fact]
    public async Task Sigusr2_TerminalSignalsWhileTheSuccessorStarts_NeitherStopNorEndIt()
    {
        // Group-wide signals (a terminal's, kill -- -PGID) while the successor's runtime starts, before its handlers
        // exist: SIGHUP's default action ends the process, SIGTTOU's stops it (where the group is not orphaned). The
        // successor is spawned with the terminal's four signals blocked, as a worker is, and takes them over.
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort);
        group.Signal("USR2");
        var successor = (await group.Supervisor.WaitForEventAsync(LogEvents.UpgradeStarted, null, TestServer.Timeout)).Int("Pid");

        // Until the successor says it has started, which it does once its handlers are registered.
        var sent = 0;
        var deadline = DateTime.UtcNow + TestServer.Timeout;
        while (!group.EventsOf(LogEvents.SupervisorStarted).Any(e => e.Int("Pid") == successor))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the successor did not start within {TestServer.Timeout} ({sent} rounds of signals sent)");
            foreach (var signal in new[] { Libc.SIGHUP, Libc.SIGTTOU })
            {
                _ = Libc.Kill(successor, signal);
            }

            sent++;
            var state = WorkerGroup.State(successor);
            Assert.True(state is not ('T' or 'Z' or 'X' or null), $"the successor {successor} is {state?.ToString() ?? "gone"} after {sent} rounds of SIGHUP and SIGTTOU");
            await group.Supervisor.WaitForNextLineAsync(TimeSpan.FromMilliseconds(20)).ContinueWith(static _ => { }, TaskScheduler.Default);
        }

        Assert.True(sent > 1, "the successor started before a second round of signals: its start was not covered");
        await group.WaitUntilAsync(g => g.EventsOf(LogEvents.UpgradeCompleted).Count == 1, TestServer.Timeout, "the successor serving");
        Assert.True(WorkerGroup.IsRunning(successor));
        Assert.Empty(await Load.RunAsync(group.Address, 100, 4, connectionClose: true));
    }

    [Fact]
    public async Task Sigusr2ThenSigterm_WhileTheSuccessorStarts_BothStop()
    {
        using var app = AppCopy.Create(Settings(AcceptStrategy.ReusePort, workers: 1));
        await using var group = await WorkerGroup.StartAsync(app, 1);

        // A successor whose workers never become ready, so it is still starting when the stop comes: it must not
        // outlive its predecessor (holding the port, workers crash-looping) once that one exits.
        var settings = Settings(AcceptStrategy.ReusePort, workers: 1);
        settings["CrashWorkerAtStart"] = true;
        app.Update(settings);
        group.Signal("USR2");
        var successor = (await group.Supervisor.WaitForEventAsync(LogEvents.UpgradeStarted, null, TestServer.Timeout)).Int("Pid");
        group.Signal("TERM");
        await group.WaitForSupervisorExitAsync(TestServer.Timeout);

        Assert.False(WorkerGroup.IsRunning(successor), $"the successor {successor} outlived its predecessor, which was told to stop while it started");
        Assert.Empty(group.EventsOf(LogEvents.UpgradeCompleted));
    }

    [Fact]
    public async Task Sigusr2_FixedStatusEndpoint_SuccessorBindsItOnceThePredecessorHasExited()
    {
        // The predecessor holds the status endpoint until it exits: the successor must not fail on it (it did: address
        // in use), and must serve it once the predecessor is gone.
        var port = TestServer.FreeLoopbackPort();
        var settings = Settings(AcceptStrategy.ReusePort, workers: 1);
        settings["WorkerProcesses"]!["StatusEndpoint"] = $"http://127.0.0.1:{port}";
        using var app = AppCopy.Create(settings);
        await using var group = await WorkerGroup.StartAsync(app, 1);
        var predecessor = group.Supervisor.Id;

        group.Signal("USR2");
        await group.WaitUntilAsync(g => g.EventsOf(LogEvents.UpgradeCompleted).Count == 1, TestServer.Timeout, "the successor serving");
        var successor = group.EventsOf(LogEvents.UpgradeCompleted).Single().Int("Pid");
        Assert.Equal(predecessor, group.EventsOf(LogEvents.StatusEndpointDeferred).Single().Int("Pid"));
        await group.WaitForSupervisorExitAsync(TestServer.Timeout);
        await group.WaitUntilAsync(
            g => g.EventsOf(LogEvents.StatusEndpointListening).Any(e => e.Int("Pid") == successor), TestServer.Timeout, "the successor's status view listening");

        var status = JsonNode.Parse(await Load.GetAsync(new Uri($"http://127.0.0.1:{port}/")))!;
        Assert.Equal(successor, status["pid"]!.GetValue<int>());
    }

    [Fact]
    public async Task Sigusr2_SuccessorsWorkersCrashAtStart_SuccessorNeverTakesOver_OldServesOn()
    {
        using var app = AppCopy.Create(Settings(AcceptStrategy.ReusePort, workers: 2));
        await using var group = await WorkerGroup.StartAsync(app, 2);
        var first = group.Ready.Select(r => r.Pid).ToHashSet();

        // A deploy whose supervisor starts but whose workers cannot: it must not tell its predecessor to leave.
        var settings = Settings(AcceptStrategy.ReusePort, workers: 2);
        settings["WorkerProcesses"]!["WorkerStartTimeout"] = "00:00:02";
        settings["CrashWorkerAtStart"] = true;
        app.Update(settings);
        group.Signal("USR2");
        var failed = await group.Supervisor.WaitForEventAsync(LogEvents.UpgradeFailed, e => e["Pid"].Length > 0, TestServer.Timeout);
        Assert.Contains("exited before its workers served", failed["Reason"], StringComparison.Ordinal);
        Assert.Empty(group.EventsOf(LogEvents.UpgradeCompleted));
        Assert.False(group.Supervisor.HasExited);
        Assert.All(first, pid => Assert.True(WorkerGroup.IsRunning(pid), $"worker {pid} of the old supervisor is gone"));
        Assert.Empty(await Load.RunAsync(group.Address, 200, 8, connectionClose: true));
    }

    [Fact]
    public async Task Sigusr2_UnixSocketBesideTcp_KeptByTheSuccessor()
    {
        var directory = Directory.CreateTempSubdirectory("kas-upgrade-").FullName;
        var path = Path.Combine(directory, "app.sock");
        try
        {
            await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, urls: $"http://127.0.0.1:0;http://unix:{path}");
            using var unix = Load.CreateUnixClient(path);
            Assert.StartsWith("Worker ", await unix.GetStringAsync(new Uri("http://localhost/whoami")), StringComparison.Ordinal);

            group.Signal("USR2");
            await group.WaitUntilAsync(g => g.EventsOf(LogEvents.UpgradeCompleted).Count == 1, TestServer.Timeout, "the successor serving");
            await group.WaitForSupervisorExitAsync(TestServer.Timeout);

            Assert.True(File.Exists(path), $"{path} removed when the old supervisor exited");
            // The same socket file, now served by the successor's workers.
            var successor = group.EventsOf(LogEvents.UpgradeStarted).Single().Int("Pid");
            for (var i = 0; i < 20; i++)
            {
                var worker = int.Parse((await unix.GetStringAsync(new Uri("http://localhost/whoami"))).Split(' ')[1], CultureInfo.InvariantCulture);
                Assert.Equal(successor, ParentOf(worker));
            }

            Assert.Empty(await Load.RunAsync(group.Address, 100, 4, connectionClose: true));

            // The successor removes the file when it stops, as a supervisor that bound it does: the next start can bind it.
            WorkerGroup.Kill(successor, "TERM");
            var deadline = DateTime.UtcNow + TestServer.Timeout;
            while (File.Exists(path))
            {
                Assert.True(DateTime.UtcNow < deadline, $"{path} still there {TestServer.Timeout} after the successor was told to stop");
                await Task.Delay(20);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static JsonObject Settings(AcceptStrategy strategy, int workers) => new()
    {
        ["AcceptStrategy"] = new JsonObject { ["Strategy"] = strategy.ToString(), ["Acceptors"] = 1 },
        ["WorkerProcesses"] = new JsonObject { ["Workers"] = workers },
    };

    private static int ParentOf(int pid) =>
        int.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal))[5..].Trim(), CultureInfo.InvariantCulture);
}
