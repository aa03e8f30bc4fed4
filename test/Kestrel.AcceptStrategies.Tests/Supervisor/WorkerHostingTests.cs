using System.Globalization;
using System.Net.Http;
using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// Worker mode inside the host: an endpoint that cannot be bound, <c>dotnet watch</c>, configuration reloads.
/// Real BenchmarkApp processes.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerHostingTests
{
    [Fact]
    public async Task UnixSocketPathTaken_Workers_StartFailsAsKestrelsWouldNoWorkerStarts()
    {
        // The socket file exists (another server's, or one an earlier run left behind: Kestrel does not remove its own):
        // refused as under UseSockets(). Held bound for the test: .NET removes the file when this socket is disposed.
        var directory = Directory.CreateTempSubdirectory("kas-unix-").FullName;
        var path = Path.Combine(directory, "app.sock");
        using var taken = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            taken.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            await using var app = ChildProcess.StartBenchmarkApp(
                $"--urls \"http://127.0.0.1:0;http://unix:{path}\" --WorkerProcesses:Workers=2");
            await app.WaitForExitAsync(TestServer.Timeout);
            Assert.NotEqual(0, app.ExitCode);
            Assert.Contains($"Failed to bind to address http://unix:{path}: address already in use", app.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
        }
        finally
        {
            taken.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Workers_SupervisorAndWorkersShareTheConsoleLineByLine()
    {
        await using var group = ChildProcess.StartBenchmarkAppWithJsonLogs(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 --Logging:LogLevel:Kestrel.AcceptStrategies=Debug");
        await group.WaitForEventAsync(LogEvents.WorkerReady, null, TestServer.Timeout);

        // One line from the supervisor, one from the worker, each at its start (the worker's console writes from a
        // queue, so its line may follow the supervisor's "ready").
        while (group.Events.Count(e => e.EventId == LogEvents.SharedConsole) < 2)
        {
            await group.WaitForNextLineAsync(TestServer.Timeout);
        }

        Assert.Equal(2, group.Events.Count(e => e.EventId == LogEvents.SharedConsole));
    }

    [Fact]
    public async Task DotnetWatch_Workers_RunsSingleProcessWithOneWarning()
    {
        // Debug: a console made shared would say so (event 59), and a process that runs alone must leave it as it is.
        await using var app = ChildProcess.StartBenchmarkAppWithJsonLogs(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=2 --Logging:LogLevel:Kestrel.AcceptStrategies=Debug",
            environment: new Dictionary<string, string> { ["DOTNET_WATCH"] = "1" });
        var address = await app.WaitForListeningAsync();

        using var client = Load.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            var answer = await client.GetStringAsync(new Uri(address, "/whoami"));
            Assert.Equal($"SingleProcess {app.Id}", string.Join(' ', answer.Split(' ').Take(2)));
        }

        Assert.Single(app.Events, e => e.EventId == LogEvents.WatchRunsSingleProcess);
        Assert.DoesNotContain(app.Events, e => e.EventId == LogEvents.WorkerStarted);
        Assert.DoesNotContain(app.Events, e => e.EventId == LogEvents.SharedConsole);
    }

    [Fact]
    public async Task KestrelEndpointChangedInAppsettings_Workers_OldPortKeepsServingNewPortUnboundRestartLogged()
    {
        // A copy of the app, because its content root (where appsettings.json is read and watched) is its own folder.
        var oldPort = TestServer.FreeLoopbackPort();
        using var copy = AppCopy.Create(Endpoint(oldPort));
        {
            await using var app = ChildProcess.StartBenchmarkApp(
                "--WorkerProcesses:Workers=2", environment: new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json" }, appPath: copy.AppPath);
            await app.WaitForEventAsync(LogEvents.WorkerReady, e => e.Int("Slot") == 0, TestServer.Timeout);
            await app.WaitForEventAsync(LogEvents.WorkerReady, e => e.Int("Slot") == 1, TestServer.Timeout);
            using var client = Load.CreateClient();
            Assert.StartsWith("Worker ", await client.GetStringAsync(new Uri($"http://127.0.0.1:{oldPort}/whoami")), StringComparison.Ordinal);

            var newPort = TestServer.FreeLoopbackPort();
            copy.Update(Endpoint(newPort));

            // Before: the supervisor's Kestrel bound the new port (nobody accepting there) and closed the old one.
            await app.WaitForLineAsync(
                l => (LogEvent.TryParse(l, out var e) && e.EventId == LogEvents.KestrelConfigurationChanged) || l.Contains($":{newPort}", StringComparison.Ordinal),
                TestServer.Timeout);

            for (var i = 0; i < 10; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{oldPort}/whoami"));
                request.Headers.ConnectionClose = true;
                using var response = await client.SendAsync(request);
                Assert.StartsWith("Worker ", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(
                () => probe.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, newPort)));
            Assert.Single(app.Events, e => e.EventId == LogEvents.KestrelConfigurationChanged);
        }
    }

    private static JsonObject Endpoint(int port) => new()
    {
        ["Kestrel"] = new JsonObject { ["Endpoints"] = new JsonObject { ["E1"] = new JsonObject { ["Url"] = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}" } } },
    };
}
