using System.Net.Http;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;

namespace Kestrel.AcceptStrategies.Tests.Hosting;

/// <summary>
/// systemd socket activation: the BenchmarkApp started by <c>systemd-socket-activate</c> (which binds the port, waits
/// for the first connection and execs the app with LISTEN_FDS/LISTEN_PID), or with hand-made LISTEN_* variables.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SocketActivationTests
{
    private const int ActivatedSocketUsed = 75;
    private const int SocketActivationIgnored = 76;
    private const int ActivatedSocketShared = 77;
    private const string Activate = "/usr/bin/systemd-socket-activate";

    [Theory]
    [InlineData("ReusePort")]
    [InlineData("Serialized")]
    public async Task ActivatedSocket_Workers2_WorkersAnswerWithNoListenVariables(string strategy)
    {
        var port = TestServer.FreeLoopbackPort();
        await using var app = await StartActivatedAsync(port, $"--WorkerProcesses:Workers=2 --AcceptStrategy:Strategy={strategy} --ChildFdProbe=true");
        var address = new Uri($"http://127.0.0.1:{port}");

        // Before: the supervisor bound 127.0.0.1:5000 (or died on the activated port being taken), never serving it.
        using var client = CreateClient();
        var pids = new HashSet<string>();
        for (var i = 0; i < 20; i++)
        {
            var answer = (await client.GetStringAsync(new Uri(address, "/whoami"))).Split(' ');
            Assert.Equal("Worker", answer[0]);
            Assert.NotEqual(app.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), answer[1]);
            pids.Add(answer[1]);
        }

        // The workers must not believe they were activated (LISTEN_PID names the supervisor: aspnetcore #29189).
        foreach (var name in new[] { "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES" })
        {
            Assert.Equal($"{name} unset", await client.GetStringAsync(new Uri(address, $"/native-env?name={name}")));
        }

        var used = await app.WaitForEventAsync(ActivatedSocketUsed, null, TestServer.Timeout);
        Assert.Equal(3, used.Int("Fd"));
        Assert.Equal(strategy == "ReusePort", app.Events.Any(e => e.EventId == ActivatedSocketShared));
        Assert.DoesNotContain("Now listening on: http://127.0.0.1:5000", app.Output, StringComparison.Ordinal);

        // Processes the app starts (every 50 ms in every process) inherit no socket: systemd left descriptor 3 open
        // across exec, the library marks it close-on-exec.
        await app.WaitForLineAsync(l => l.Contains($"children checked in pid {app.Id}", StringComparison.Ordinal), TestServer.Timeout);
        Assert.DoesNotContain("fd-probe: leaked", app.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ActivatedSocket_SingleProcess_Serves()
    {
        var port = TestServer.FreeLoopbackPort();
        await using var app = await StartActivatedAsync(port, "--WorkerProcesses:Workers=0 --AcceptStrategy:Strategy=ThunderingHerd --AcceptStrategy:Acceptors=2");

        using var client = CreateClient();
        for (var i = 0; i < 10; i++)
        {
            var answer = await client.GetStringAsync(new Uri($"http://127.0.0.1:{port}/whoami"));
            Assert.StartsWith($"SingleProcess {app.Id} ", answer, StringComparison.Ordinal);
        }

        // The process's own children (here: its native environment) do not inherit the activation either.
        Assert.Equal("LISTEN_FDS unset", await client.GetStringAsync(new Uri($"http://127.0.0.1:{port}/native-env?name=LISTEN_FDS")));
        await app.WaitForEventAsync(ActivatedSocketUsed, null, TestServer.Timeout);
    }

    [Fact]
    public async Task ListenFdsNotASocket_StartupErrorNamingTheDescriptor()
    {
        // Descriptor 3 is a file; LISTEN_PID is the shell's pid, which exec hands to the app.
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=2",
            shellPrefix: "exec 3</dev/null; export LISTEN_FDS=1 LISTEN_PID=$$ LISTEN_FDNAMES=web; ");

        await app.WaitForExitAsync(TestServer.Timeout);
        Assert.NotEqual(0, app.ExitCode);
        Assert.Contains("descriptor 3 (LISTEN_FDNAMES 'web') is not a socket", app.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ActivatedUnixSocket_StartupErrorNamingTheDescriptor()
    {
        var path = Path.Combine(Path.GetTempPath(), $"accept-activated-{Guid.NewGuid():N}.sock");
        await using var app = await StartActivatedAsync(path, "--WorkerProcesses:Workers=2");
        try
        {
            // The first connection makes systemd-socket-activate start the app.
            using var trigger = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            await trigger.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(path));

            await app.WaitForLineAsync(l => l.Contains("descriptor 3", StringComparison.Ordinal), TestServer.Timeout);
            Assert.Contains("descriptor 3 (LISTEN_FDNAMES 'unknown') is a Unix Stream socket, listening", app.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ListenPidNotOurs_IgnoredWithWarning_ServesItsUrls()
    {
        // LISTEN_PID 1 is not the app: the descriptors are someone else's, whatever descriptor 3 is.
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=0",
            shellPrefix: "exec 3</dev/null; export LISTEN_FDS=1 LISTEN_PID=1; ",
            environment: new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json" });
        var address = await app.WaitForListeningAsync();

        using var client = CreateClient();
        Assert.StartsWith("SingleProcess ", await client.GetStringAsync(new Uri(address, "/whoami")), StringComparison.Ordinal);
        await app.WaitForEventAsync(SocketActivationIgnored, null, TestServer.Timeout);
        Assert.DoesNotContain(app.Events, e => e.EventId == ActivatedSocketUsed);
    }

    /// <summary>
    /// The app under <c>systemd-socket-activate -l 127.0.0.1:PORT</c>, which passes on only the variables named with
    /// -E (here all of the test's); <c>sh -c '"$@"'</c> execs the app in the pid systemd-socket-activate set in
    /// LISTEN_PID. Returned once it listens; JSON logs, so tests wait for event ids.
    /// </summary>
    private static Task<ChildProcess> StartActivatedAsync(int port, string arguments) => StartActivatedAsync($"127.0.0.1:{port}", arguments);

    private static async Task<ChildProcess> StartActivatedAsync(string listen, string arguments)
    {
        Assert.True(File.Exists(Activate), $"{Activate} is needed (package systemd)");
        var environment = new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json" };
        var names = "$(env | cut -d= -f1 | grep -v '[^A-Za-z0-9_]' | sed 's/^/-E /')";
        var app = ChildProcess.StartBenchmarkApp(
            arguments, shellPrefix: $"exec {Activate} -l {listen} {names} /bin/sh -c '\"$@\"' sh ", environment: environment);
        try
        {
            // Its own line once it listens: only then is a connection queued rather than refused.
            await app.WaitForLineAsync(l => l.StartsWith($"Listening on {listen} as 3", StringComparison.Ordinal), TestServer.Timeout);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>The first request starts the app (socket activation), so it may wait for a whole start-up.</summary>
    private static HttpClient CreateClient()
    {
        var client = Load.CreateClient();
        client.Timeout = TestServer.Timeout * 2;
        return client;
    }
}
