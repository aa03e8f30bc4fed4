using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Supervisor.Systemd;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// A real supervisor under a service manager: what a <c>Type=notify-reload</c> unit hears on <c>NOTIFY_SOCKET</c> (a
/// datagram socket the test binds, as systemd does), what its workers inherit, and the descriptor limit.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class ServiceManagerTests
{
    [Fact]
    public async Task NotifySocket_StartReloadStop_ReadyReloadingWithMonotonicTimeReadyStoppingInOrder_WorkersNotTold()
    {
        await using var manager = NotifyListener.Bind();
        // Debug: the supervisor logs each notification (event 31) in order with its workers' events.
        var group = await WorkerGroup.StartAsync(
            2,
            AcceptStrategy.ReusePort,
            "--Logging:LogLevel:Kestrel.AcceptStrategies.Supervisor=Debug",
            environment: new Dictionary<string, string> { [ServiceNotifier.SocketVariable] = manager.Path });
        await using (group)
        {
            var ready = await manager.NextAsync();
            Assert.Equal("1", ready["READY"]);
            Assert.Contains("2 worker slot(s)", ready["STATUS"], StringComparison.Ordinal);

            // Workers never see the variable: under NotifyAccess=all a worker's message would pass for the service's.
            Assert.Equal($"{ServiceNotifier.SocketVariable} unset", await Load.GetAsync(new Uri(group.Address, $"/native-env?name={ServiceNotifier.SocketVariable}")));

            var before = ServiceNotifier.MonotonicMicroseconds();
            group.Signal("HUP");
            var reloading = await manager.NextAsync();
            var after = ServiceNotifier.MonotonicMicroseconds();
            Assert.Equal("1", reloading["RELOADING"]);
            Assert.InRange(long.Parse(reloading["MONOTONIC_USEC"], CultureInfo.InvariantCulture), before, after);

            // READY again only once both slots run a worker started by the reload: in the supervisor's log, after both
            // reload workers' "ready" events.
            var reloaded = await manager.NextAsync();
            Assert.Equal("1", reloaded["READY"]);
            Assert.StartsWith("reloaded", reloaded["STATUS"], StringComparison.Ordinal);
            await group.WaitUntilAsync(g => g.EventsOf(LogEvents.ServiceManagerNotified).Count >= 3, TestServer.Timeout, "the third notification logged");
            var events = group.Events.ToList();
            var readyLogged = events.IndexOf(group.EventsOf(LogEvents.ServiceManagerNotified)[2]);
            var reloadPids = group.Started.Where(s => s.Reason == "reload").Select(s => s.Pid).ToHashSet();
            Assert.Equal(2, reloadPids.Count);
            Assert.Equal(2, events.Take(readyLogged).Count(e => e.EventId == LogEvents.WorkerReady && reloadPids.Contains(e.Int("Pid"))));

            group.Signal("TERM");
            var stopping = await manager.NextAsync();
            Assert.Equal("1", stopping["STOPPING"]);
            await group.Supervisor.WaitForExitAsync(TestServer.Timeout);
            Assert.Equal(0, group.Supervisor.ExitCode);
            Assert.False(manager.TryNext(out var extra), $"an unexpected message after STOPPING=1: {extra}");
        }
    }

    [Fact]
    public async Task NotifySocket_Sigusr2_MainPidOfTheSuccessorWithReady_NoStoppingFromTheOld_SuccessorReloadsAndStopsAfter()
    {
        await using var manager = NotifyListener.Bind();
        await using var group = await WorkerGroup.StartAsync(
            2, AcceptStrategy.ThunderingHerd, environment: new Dictionary<string, string> { [ServiceNotifier.SocketVariable] = manager.Path });
        Assert.Equal("1", (await manager.NextAsync())["READY"]);

        // The successor says nothing itself until it is the main process: its predecessor names it once it serves.
        group.Signal("USR2");
        var handover = await manager.NextAsync();
        var successor = group.EventsOf(LogEvents.UpgradeStarted).Single().Int("Pid");
        Assert.Equal(successor.ToString(CultureInfo.InvariantCulture), handover["MAINPID"]);
        Assert.Equal("1", handover["READY"]);

        // The old supervisor leaves without STOPPING=1: the service goes on.
        await group.WaitForSupervisorExitAsync(TestServer.Timeout);
        Assert.False(manager.TryNext(out var extra), $"an unexpected message after the hand-over: {extra}");

        // The successor kept NOTIFY_SOCKET for its own life, and acts on its signals (it was not started with them blocked).
        WorkerGroup.Kill(successor, "HUP");
        Assert.Equal("1", (await manager.NextAsync())["RELOADING"]);
        Assert.Equal("1", (await manager.NextAsync())["READY"]);
        WorkerGroup.Kill(successor, "TERM");
        Assert.Equal("1", (await manager.NextAsync())["STOPPING"]);
    }

    [Fact]
    public async Task NotifySocket_ReloadRejectedOrNewWorkersFailing_ReadyFollowsReloadingEachTime()
    {
        using var app = AppCopy.Create(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1, ["RespawnBackoff"] = "00:00:01" } });
        await using var manager = NotifyListener.Bind();
        await using var group = await WorkerGroup.StartAsync(app, 1, environment: new Dictionary<string, string> { [ServiceNotifier.SocketVariable] = manager.Path });
        Assert.Equal("1", (await manager.NextAsync())["READY"]);

        // An invalid configuration replaces nothing: the reload is over at once.
        app.Update(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1, ["MaxRequestsPerWorker"] = -5 } });
        group.Signal("HUP");
        Assert.Equal("1", (await manager.NextAsync())["RELOADING"]);
        var rejected = await manager.NextAsync();
        Assert.Equal("1", rejected["READY"]);
        Assert.Contains("rejected", rejected["STATUS"], StringComparison.Ordinal);

        // New workers that die at start: the old one goes on serving, and the service manager is not left waiting.
        app.Update(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1, ["RespawnBackoff"] = "00:00:01" }, ["CrashWorkerAtStart"] = true });
        group.Signal("HUP");
        Assert.Equal("1", (await manager.NextAsync())["RELOADING"]);
        var incomplete = await manager.NextAsync();
        Assert.Equal("1", incomplete["READY"]);
        Assert.Contains("failed to start", incomplete["STATUS"], StringComparison.Ordinal);
        Assert.Single(group.LivePids.Intersect(group.Ready.Select(r => r.Pid)));
    }

    [Fact]
    public async Task DescriptorLimit_TooLowForTheGroup_WarnsAtStartNamingTheLimitAndTheFix()
    {
        // A limit the supervisor itself starts under (a JIT process opens about 200 descriptors), far below what a pool
        // of up to 64 workers needs (each slot's control sockets and pidfds, twice while a worker is replaced). One
        // worker starts; the warning comes before it.
        var supervisor = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy=ThunderingHerd --WorkerProcesses:Workers=1 --WorkerProcesses:MaxWorkers=64",
            shellPrefix: $"ulimit -n {Limit}; ",
            environment: new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json" });
        await using var owned = supervisor;
        var warning = await supervisor.WaitForEventAsync(LogEvents.DescriptorLimitLow, null, TestServer.Timeout);

        Assert.Equal(Limit.ToString(CultureInfo.InvariantCulture), warning["Limit"]);
        Assert.Equal("64", warning["Slots"]);
        var needed = ulong.Parse(warning["Needed"], CultureInfo.InvariantCulture);
        Assert.True(needed > Limit, $"needs {needed}, which the limit {Limit} fits: no warning was due");
        Assert.Contains($"ulimit -n {needed}", warning["Advice"], StringComparison.Ordinal);
        Assert.Contains($"LimitNOFILE={needed}", warning["Advice"], StringComparison.Ordinal);
    }

    private const int Limit = 300;

    /// <summary>The service manager's end: a datagram socket bound to a fresh path, each message parsed into its assignments.</summary>
    private sealed class NotifyListener : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly string _directory;
        private readonly Channel<Dictionary<string, string>> _messages = Channel.CreateUnbounded<Dictionary<string, string>>();
        private readonly Task _receiving;

        private NotifyListener(string directory)
        {
            _directory = directory;
            Path = System.IO.Path.Combine(directory, "notify");
            _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            _socket.Bind(new UnixDomainSocketEndPoint(Path));
            _receiving = Task.Run(ReceiveAsync);
        }

        public string Path { get; }

        public static NotifyListener Bind() => new(Directory.CreateTempSubdirectory("notify-").FullName);

        /// <summary>The next message, within the test timeout.</summary>
        public async Task<Dictionary<string, string>> NextAsync() => await _messages.Reader.ReadAsync().AsTask().WaitAsync(TestServer.Timeout);

        public bool TryNext(out string? message)
        {
            var found = _messages.Reader.TryRead(out var assignments);
            message = found ? string.Join(' ', assignments!.Select(a => a.Key + "=" + a.Value)) : null;
            return found;
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Dispose();
            await _receiving.ConfigureAwait(false);
            Directory.Delete(_directory, recursive: true);
        }

        private async Task ReceiveAsync()
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var n = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                    _messages.Writer.TryWrite(Encoding.UTF8.GetString(buffer, 0, n)
                        .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                        .Select(line => line.Split('=', 2))
                        .ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : ""));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Disposed.
            }
        }
    }
}
