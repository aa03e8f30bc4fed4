using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>The supervisor's status view (StatusEndpoint) with real worker processes, over TCP and a Unix socket.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class StatusEndpointTests(ITestOutputHelper output)
{
    private const string Tcp = "--WorkerProcesses:StatusEndpoint=http://127.0.0.1:0";

    [Fact]
    public async Task Json_TwoWorkers_ListsTheLiveWorkersAndTheirRequestsAddUp()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, Tcp);
        using var status = await StatusClient.OfAsync(group.Supervisor);

        // Every worker is ready, so both are listed, active, with one accepted count per acceptor (once the worker has
        // started its acceptors: "active" is the supervisor's word, sent before the worker hears it).
        var first = await status.WaitUntilAsync(
            s => s["workers"]!.AsArray() is var workers && workers.Count == 2
                && workers.All(w => (string)w!["state"]! == "active" && w["accepted"]!.AsArray().Count == 2),
            TestServer.Timeout,
            "both workers active, each with its two acceptors' counts");
        output.WriteLine(first.ToJsonString());
        Assert.Equal(group.Supervisor.Id, (int)first["pid"]!);
        Assert.Equal("ReusePort", (string)first["strategy"]!);
        Assert.Contains(first["endpoints"]!.AsArray(), e => ((string)e!).EndsWith(":" + group.Address.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
        Assert.Equal(group.LivePids.Order(), StatusClient.Pids(first));
        Assert.Equal([0, 1], first["workers"]!.AsArray().Select(w => (int)w!["slot"]!).Order());
        foreach (var worker in first["workers"]!.AsArray())
        {
            Assert.Equal(2, worker!["accepted"]!.AsArray().Count);
            Assert.True((long)worker["rssBytes"]! > 1024 * 1024, "a live .NET worker holds more than a megabyte");
            var started = DateTimeOffset.Parse((string)worker["startedAt"]!, CultureInfo.InvariantCulture);
            Assert.InRange(started, DateTimeOffset.UtcNow - TestServer.Timeout - TestServer.Timeout, DateTimeOffset.UtcNow);
        }

        // Nothing else talks to the workers, so their counts add up to what was sent, once their heartbeats say so.
        const int Sent = 600;
        Assert.Empty(await Load.RunAsync(group.Address, Sent, 8, connectionClose: true));
        var counted = await status.WaitUntilAsync(s => StatusClient.Requests(s) >= Sent, TimeSpan.FromSeconds(20), $"request counts adding up to {Sent}");
        output.WriteLine(counted.ToJsonString());
        Assert.Equal(Sent, StatusClient.Requests(counted));
        Assert.Equal(Sent, counted["workers"]!.AsArray().Sum(w => w!["accepted"]!.AsArray().Sum(a => (long)a!)));

        var text = await status.GetTextAsync();
        output.WriteLine(text);
        foreach (var pid in group.LivePids)
        {
            Assert.Contains(text.Split('\n'), l => l.Contains(" " + pid.ToString(CultureInfo.InvariantCulture) + " ", StringComparison.Ordinal) && l.Contains("active", StringComparison.Ordinal));
        }

        Assert.Contains("ReusePort", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_WorkerKilled_ListFollowsItsReplacementAndCountsTheCrash()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, Tcp);
        using var status = await StatusClient.OfAsync(group.Supervisor);
        var victim = group.Ready.Single(r => r.Slot == 1);

        WorkerGroup.Kill(victim.Pid, "KILL");
        await group.WaitUntilAsync(g => g.Ready.Any(r => r.Slot == 1 && r.Generation > victim.Generation), TestServer.Timeout, "slot 1 replaced");

        var after = await status.WaitUntilAsync(
            s => StatusClient.Pids(s).SequenceEqual(group.LivePids.Order()) && s["workers"]!.AsArray().All(w => (string)w!["state"]! == "active"),
            TestServer.Timeout,
            "the status lists the live workers");
        output.WriteLine(after.ToJsonString());
        Assert.DoesNotContain(victim.Pid, StatusClient.Pids(after));
        Assert.Equal(2, StatusClient.Pids(after).Count);
        Assert.Equal(1L, (long)after["restarts"]!["crashed"]!);
        Assert.Equal(0L, (long)after["restarts"]!["hung"]!);
        Assert.Equal(victim.Generation + 1, (int)after["workers"]!.AsArray().Single(w => (int)w!["slot"]! == 1)!["generation"]!);
    }

    [Fact]
    public async Task UnixSocket_StaleFileReplaced_Mode0600_NotInherited_RemovedOnStop()
    {
        var dir = Directory.CreateTempSubdirectory("kas-status-");
        try
        {
            var path = Path.Combine(dir.FullName, "status.sock");
            MakeStaleSocket(path);
            Assert.True(File.Exists(path));

            await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.Serialized, $"--WorkerProcesses:StatusEndpoint=unix:{path}");
            using var status = await StatusClient.OfAsync(group.Supervisor);
            Assert.Equal("unix:" + path, status.Address);
            Assert.NotEmpty(group.EventsOf(LogEvents.StatusSocketRemoved));

            var json = await status.WaitUntilAsync(s => StatusClient.Pids(s).SequenceEqual(group.LivePids.Order()), TestServer.Timeout, "the live workers");
            Assert.Equal("Serialized", (string)json["strategy"]!);
            Assert.Contains("Serialized", await status.GetTextAsync(), StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

            var inode = SocketInodes.Unix(path);
            Assert.True(SocketInodes.Holds(group.Supervisor.Id, inode));
            Assert.All(group.LivePids, pid => Assert.False(SocketInodes.Holds(pid, inode), $"worker {pid} inherited the status socket"));

            group.Signal("TERM");
            await group.Supervisor.WaitForExitAsync(TestServer.Timeout);
            Assert.Equal(0, group.Supervisor.ExitCode);
            Assert.False(File.Exists(path), "the status socket is removed on stop");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task SilentAndGarbageClients_OtherRequestsAnswered_BadOnesRefused_NotInherited()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ThunderingHerd, Tcp);
        using var status = await StatusClient.OfAsync(group.Supervisor);
        var port = new Uri(status.Address).Port;

        using var silent = new TcpClient();
        await silent.ConnectAsync(IPAddress.Loopback, port);
        using var garbage = new TcpClient();
        await garbage.ConnectAsync(IPAddress.Loopback, port);
        var garbageAnswer = SendGarbageAsync(garbage);

        // Answered while the silent client still holds its connection: one client cannot stall the others.
        var json = await status.GetJsonAsync();
        Assert.Equal(2, StatusClient.Pids(json).Count);
        Assert.False(silent.Client.Poll(0, SelectMode.SelectRead), "the silent client was dropped before the other request was answered");
        Assert.StartsWith("HTTP/1.1 400 ", await garbageAnswer.WaitAsync(TestServer.Timeout), StringComparison.Ordinal);

        using (var post = await status.SendAsync(HttpMethod.Post, "/"))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
            Assert.Contains("GET", post.Content.Headers.Allow);
        }

        using (var missing = await status.SendAsync(HttpMethod.Get, "/workers/7"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var format = await status.SendAsync(HttpMethod.Get, "/?format=xml"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, format.StatusCode);
        }

        // The silent client is cut off by the read timeout, not kept forever.
        var buffer = new byte[16];
        var read = await silent.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TestServer.Timeout);
        Assert.Equal(0, read);

        var inode = SocketInodes.ListeningTcp(port);
        Assert.True(SocketInodes.Holds(group.Supervisor.Id, inode));
        Assert.All(group.LivePids, pid => Assert.False(SocketInodes.Holds(pid, inode), $"worker {pid} inherited the status socket"));

        // And the supervisor is none the worse.
        Assert.Equal(2, StatusClient.Pids(await status.GetJsonAsync()).Count);
    }

    [Fact]
    public async Task Ipv6Loopback_PortZero_LoggedAsBoundAndServed()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ThunderingHerd, "--WorkerProcesses:StatusEndpoint=http://[::1]:0");
        using var status = await StatusClient.OfAsync(group.Supervisor);

        Assert.StartsWith("http://[::1]:", status.Address, StringComparison.Ordinal);
        Assert.NotEqual(0, new Uri(status.Address).Port);
        var json = await status.WaitUntilAsync(s => StatusClient.Pids(s).SequenceEqual(group.LivePids), TestServer.Timeout, "the live worker");
        Assert.Equal("ThunderingHerd", (string)json["strategy"]!);
    }

    [Fact]
    public async Task UnixSocketSomeoneListensOn_StartupFailsNamingIt_SocketKept()
    {
        var dir = Directory.CreateTempSubdirectory("kas-status-");
        try
        {
            var path = Path.Combine(dir.FullName, "status.sock");
            using var other = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            other.Bind(new UnixDomainSocketEndPoint(path));
            other.Listen();

            await AssertStartupFailsAsync(
                $"--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 --WorkerProcesses:StatusEndpoint=unix:{path}",
                $"another process listens on {path}",
                StringComparison.Ordinal);
            Assert.True(File.Exists(path), "a socket someone listens on is not removed");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task UnixPathNotASocket_StartupFailsNamingIt_FileKept()
    {
        var dir = Directory.CreateTempSubdirectory("kas-status-");
        try
        {
            var path = Path.Combine(dir.FullName, "notes.txt");
            await File.WriteAllTextAsync(path, "keep me");
            await AssertStartupFailsAsync(
                $"--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 --WorkerProcesses:StatusEndpoint=unix:{path}",
                $"{path} exists and is not a socket",
                StringComparison.Ordinal);
            Assert.Equal("keep me", await File.ReadAllTextAsync(path));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TcpPortTaken_StartupFailsNamingIt()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;

        await AssertStartupFailsAsync(
            $"--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 --WorkerProcesses:StatusEndpoint=http://127.0.0.1:{port}",
            $"status endpoint http://127.0.0.1:{port}",
            StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task SameAsAppEndpoint_StartupFailsNamingIt()
    {
        var port = TestServer.FreeLoopbackPort();
        await AssertStartupFailsAsync(
            $"--urls=http://127.0.0.1:{port} --WorkerProcesses:Workers=1 --WorkerProcesses:StatusEndpoint=http://127.0.0.1:{port}",
            "is one of the app's endpoints",
            StringComparison.Ordinal);
    }

    /// <summary>The app exits non-zero naming the problem, before any worker starts.</summary>
    private async Task AssertStartupFailsAsync(string arguments, string expected, StringComparison comparison)
    {
        await using var app = ChildProcess.StartBenchmarkApp(arguments);
        await app.WaitForExitAsync(TestServer.Timeout);

        output.WriteLine(app.Output);
        Assert.NotEqual(0, app.ExitCode);
        Assert.Contains(expected, app.Output, comparison);
        Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
    }

    /// <summary>A socket file with nobody listening, as a supervisor killed with SIGKILL leaves it.</summary>
    private static void MakeStaleSocket(string path)
    {
        // .NET removes the file when a socket it bound is disposed; a socket closed by the kernel (the process died) does not.
        using var python = System.Diagnostics.Process.Start("python3", ["-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()", path])!;
        Assert.True(python.WaitForExit(10_000));
        Assert.Equal(0, python.ExitCode);
    }

    private static async Task<string> SendGarbageAsync(TcpClient client)
    {
        var stream = client.GetStream();
        try
        {
            // No line end in 64 KB: past the size limit, the supervisor answers and closes.
            var junk = new byte[64 * 1024];
            Random.Shared.NextBytes(junk);
            junk.AsSpan().Replace((byte)'\n', (byte)'x');
            await stream.WriteAsync(junk);
        }
        catch (IOException)
        {
            // Closed while we still wrote: read what it answered.
        }

        var answer = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                answer.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
            // Reset after the answer (unread junk in its receive buffer).
        }

        return Encoding.ASCII.GetString(answer.ToArray());
    }
}
