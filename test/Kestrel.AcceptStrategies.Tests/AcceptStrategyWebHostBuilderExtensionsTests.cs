using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests;

public sealed class AcceptStrategyWebHostBuilderExtensionsTests
{
    [Fact]
    public async Task UseAcceptStrategy_AppSettingsJson_BindsEveryOption()
    {
        var json = Path.Combine(Path.GetTempPath(), $"appsettings-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(json, """{ "AcceptStrategy": { "Strategy": "ThunderingHerd", "Acceptors": 3, "DeferAccept": false } }""");
        try
        {
            await using var server = await TestServer.StartAsync(build: b => b.Configuration.AddJsonFile(json));
            using var metrics = server.CollectMetrics();

            var options = server.App.Services.GetRequiredService<IOptions<AcceptStrategyOptions>>().Value;
            Assert.Equal(AcceptStrategy.ThunderingHerd, options.Strategy);
            Assert.Equal(3, options.Acceptors);
            Assert.False(options.DeferAccept);
            Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(server.BaseAddress, "/foo")));
            Assert.StartsWith("ThunderingHerd|", Assert.Single(metrics.Accepted).Key, StringComparison.Ordinal);
            Assert.Equal(3, TestServer.ThreadNames().Count(n => n.StartsWith($"acc:{server.Port}#", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task UseAcceptStrategy_CommandLineSwitches_Bind()
    {
        await using var server = await TestServer.StartAsync(args: ["--AcceptStrategy:Strategy=serialized", "--AcceptStrategy:Acceptors=2"]);

        var options = server.App.Services.GetRequiredService<IOptions<AcceptStrategyOptions>>().Value;
        Assert.Equal(AcceptStrategy.Serialized, options.Strategy);
        Assert.Equal(2, options.Acceptors);
    }

    [Fact]
    public async Task UseAcceptStrategy_CodeAndConfiguration_CodeWins()
    {
        await using var server = await TestServer.StartAsync(
            configure: o => o.Strategy = AcceptStrategy.Serialized,
            args: ["--AcceptStrategy:Strategy=ThunderingHerd", "--AcceptStrategy:Acceptors=2"]);
        using var metrics = server.CollectMetrics();

        var options = server.App.Services.GetRequiredService<IOptions<AcceptStrategyOptions>>().Value;
        Assert.Equal(AcceptStrategy.Serialized, options.Strategy);
        Assert.Equal(2, options.Acceptors);
        await Load.GetAsync(new Uri(server.BaseAddress, "/foo"));
        Assert.StartsWith("Serialized|", Assert.Single(metrics.Accepted).Key, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseAcceptStrategy_Defaults_ReusePortWithOneAcceptorPerCore()
    {
        await using var server = await TestServer.StartAsync();

        var options = server.App.Services.GetRequiredService<IOptions<AcceptStrategyOptions>>().Value;
        Assert.Equal(AcceptStrategy.ReusePort, options.Strategy);
        Assert.Equal(Environment.ProcessorCount, options.Acceptors);
        Assert.True(options.DeferAccept);
    }

    [Fact]
    public async Task StartAsync_InvalidOptions_OneErrorNamingEveryProblem()
    {
        var app = TestServer.Build(args: ["--AcceptStrategy:Strategy=Fastest", "--AcceptStrategy:Acceptors=0", "--AcceptStrategy:Acceptor=3", "--AcceptStrategy:DeferAccept=maybe"]);
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            Assert.Equal(4, error.Failures.Count());
            Assert.Contains("AcceptStrategy:Strategy = 'Fastest' is not valid: expected one of Serialized, ThunderingHerd, ReusePort", error.Message, StringComparison.Ordinal);
            Assert.Contains("AcceptStrategy:Acceptors = 0 is out of range", error.Message, StringComparison.Ordinal);
            Assert.Contains("AcceptStrategy:Acceptor is not an option", error.Message, StringComparison.Ordinal);
            Assert.Contains("AcceptStrategy:DeferAccept = 'maybe' is not valid: expected true or false", error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("00:00:00.05")]
    [InlineData("00:00:00.999")]
    public async Task StartAsync_HangTimeoutShorterThanASecond_Refused(string hangTimeout)
    {
        // Heartbeats come 100 ms apart at best: accepted, such a timeout would kill every worker as hung, over and over.
        var app = TestServer.Build(args: ["--WorkerProcesses:Workers=1", $"--WorkerProcesses:HangTimeout={hangTimeout}"], workers: _ => { });
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));
            Assert.Contains($"WorkerProcesses:HangTimeout = {TimeSpan.Parse(hangTimeout, System.Globalization.CultureInfo.InvariantCulture)} is out of range", Assert.Single(error.Failures), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task StartAsync_InvalidWorkerOptions_OneErrorNamingEveryProblem()
    {
        var app = TestServer.Build(args:
        [
            "--WorkerProcesses:Workers=-1", "--WorkerProcesses:MaxRequestsPerWorker=50", "--WorkerProcesses:MinRequestsPerWorker=80",
            "--WorkerProcesses:RespawnBackoff=00:00:00", "--WorkerProcesses:MaxRespawnBackoff=soon", "--WorkerProcesses:HangTimeout=-00:00:01",
            "--WorkerProcesses:WarmupPath=health", "--WorkerProcesses:MaxWorkerLifetime=00:00:00.1", "--WorkerProcesses:MaxWorkerMemoryMegabytes=-200",
        ], workers: _ => { });
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            Assert.Equal(8, error.Failures.Count());
            Assert.Contains("WorkerProcesses:Workers = -1 is out of range", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:MinRequestsPerWorker = 80 is above MaxRequestsPerWorker = 50", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:RespawnBackoff = 00:00:00 is out of range: it must be above 0", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:MaxRespawnBackoff = 'soon' is not valid: expected a duration", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:HangTimeout = -00:00:01 is out of range: it must be 0 (use 0 to turn hang detection off) or between 00:00:01 and 01:00:00", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:WarmupPath = 'health' must start with '/'", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:MaxWorkerLifetime = 00:00:00.1000000 is out of range", error.Message, StringComparison.Ordinal);
            Assert.Contains("WorkerProcesses:MaxWorkerMemoryMegabytes = -200 is negative", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AcceptStrategyProcess_NoWorkers_SingleProcessRole()
    {
        await using var server = await TestServer.StartAsync();

        var process = server.App.Services.GetRequiredService<WorkerProcessInfo>();

        Assert.Equal(WorkerProcessRole.SingleProcess, process.Role);
        Assert.Equal(-1, process.Slot);
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task StartAsync_PortInUse_KestrelsAddressInUseError(AcceptStrategy strategy)
    {
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        other.Listen();
        var port = ((IPEndPoint)other.LocalEndPoint!).Port;
        var app = TestServer.Build(o => o.Strategy = strategy, b => b.WebHost.UseUrls($"http://127.0.0.1:{port}"));
        await using (app)
        {
            var error = await Assert.ThrowsAsync<IOException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            Assert.IsType<AddressInUseException>(error.InnerException);
            Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task StartAsync_PortZero_ReportsTheAssignedPort(AcceptStrategy strategy)
    {
        await using var server = await TestServer.StartAsync(o => { o.Strategy = strategy; o.Acceptors = 2; });

        Assert.NotEqual(0, server.Port);
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(server.BaseAddress, "/foo")));
    }

    [Theory]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task StartAsync_Localhost_BindsIPv4AndIPv6(AcceptStrategy strategy)
    {
        var port = TestServer.FreeLoopbackPort();
        await using var server = await TestServer.StartAsync(o => { o.Strategy = strategy; o.Acceptors = 2; }, b => b.WebHost.UseUrls($"http://localhost:{port}"));
        using var metrics = server.CollectMetrics();

        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri($"http://127.0.0.1:{port}/foo")));
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri($"http://[::1]:{port}/foo")));

        var endpoints = metrics.Accepted.Keys.Select(k => k.Split('|')[1]).Distinct().Order().ToArray();
        Assert.Equal([$"127.0.0.1:{port}", $"[::1]:{port}"], endpoints);
    }

    [Fact]
    public async Task StartAsync_UnixSocketEndpoint_ServedByKestrelsOwnTransport()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kas-{Guid.NewGuid():N}.sock");
        await using var server = await TestServer.StartAsync(build: b => b.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.ListenUnixSocket(path);
        }));
        using var metrics = server.CollectMetrics();
        using var unixClient = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        });

        Assert.Equal(TestServer.Body, await unixClient.GetStringAsync(new Uri("http://localhost/foo")).WaitAsync(TestServer.Timeout));
        Assert.Equal(0, metrics.TotalAccepted);

        var ip = server.Addresses.Select(a => new Uri(a)).Single(u => u.Scheme == "http" && u.Host == "127.0.0.1");
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(ip, "/foo")));
        Assert.Equal(1, metrics.TotalAccepted);
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task StopAsync_RequestInFlight_CompletesAndNothingIsLeftRunning(AcceptStrategy strategy)
    {
        var server = await TestServer.StartAsync(o => { o.Strategy = strategy; o.Acceptors = 3; });
        var port = server.Port;
        using var client = Load.CreateClient();

        var slow = client.GetAsync(new Uri(server.BaseAddress, "/slow"));
        await server.Slow.Entered.Task.WaitAsync(TestServer.Timeout);
        var stopping = server.App.StopAsync();

        // The listener goes first: new connections are refused while the request is still running.
        await WaitUntilAsync(() => !CanConnect(port));
        Assert.False(slow.IsCompleted);
        server.Slow.Release.SetResult();

        using var response = await slow.WaitAsync(TestServer.Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
        await stopping.WaitAsync(TestServer.Timeout);
        await server.App.DisposeAsync();

        await TestServer.AssertNoAcceptorThreadsAsync(port);
        using var rebind = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        rebind.Bind(new IPEndPoint(IPAddress.Loopback, port));
    }

    private static bool CanConnect(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TestServer.Timeout);
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
