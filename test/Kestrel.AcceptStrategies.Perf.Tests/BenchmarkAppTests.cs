using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Perf.Tests;

public sealed class BenchmarkAppTests
{
    [Fact]
    public async Task BenchmarkApp_EnvironmentVariable_SelectsStrategy()
    {
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0",
            environment: new Dictionary<string, string> { ["AcceptStrategy__Strategy"] = "Serialized", ["AcceptStrategy__Acceptors"] = "3" });

        var address = await app.WaitForListeningAsync();
        await app.WaitForLineAsync(l => l.Contains("Application started.", StringComparison.Ordinal), TestServer.Timeout);

        Assert.Contains("with Serialized: 3 acceptor(s) on 1 listening socket(s), mutex in-process", app.Output, StringComparison.Ordinal);
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(address, "/foo?foo=a&foo=b")));
    }

    [Fact]
    public async Task BenchmarkApp_Baseline_UsesKestrelsDefaultTransport()
    {
        await using var app = ChildProcess.StartBenchmarkApp("--urls=http://127.0.0.1:0 --Baseline=true");

        var address = await app.WaitForListeningAsync();
        await app.WaitForLineAsync(l => l.Contains("Application started.", StringComparison.Ordinal), TestServer.Timeout);

        Assert.DoesNotContain("Kestrel.AcceptStrategies", app.Output, StringComparison.Ordinal);
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(address, "/foo")));
    }

    [Fact]
    public async Task BenchmarkApp_InvalidOption_FailsAtStartupNamingIt()
    {
        await using var app = ChildProcess.StartBenchmarkApp("--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy=Fastest");

        await app.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(78, app.ExitCode);
        Assert.Contains("AcceptStrategy:Strategy = 'Fastest' is not valid", app.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BenchmarkApp_UnknownArgument_FailsNamingIt()
    {
        await using var app = ChildProcess.StartBenchmarkApp("--urls=http://127.0.0.1:0 --AcceptStrategy:Stratgy=Serialized --Baseline=true");

        await app.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(2, app.ExitCode);
        Assert.Contains("unknown argument(s): AcceptStrategy:Stratgy", app.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", app.Output, StringComparison.Ordinal);
    }
}
