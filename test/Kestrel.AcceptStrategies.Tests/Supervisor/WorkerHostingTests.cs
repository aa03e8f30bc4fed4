using System.Globalization;
using System.Net.Http;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// Worker mode inside the host: endpoints it cannot hand to workers, <c>dotnet watch</c>, configuration reloads.
/// Real BenchmarkApp processes.
/// </summary>
[Collection(WorkerProcesses.Name)]
public sealed class WorkerHostingTests
{
    [Fact]
    public async Task UnixSocketBesideIpEndpoint_Workers_RefusedAtStartNamingTheSocket()
    {
        var path = Path.Combine(Path.GetTempPath(), $"accept-uds-{Guid.NewGuid():N}.sock");
        await using var app = ChildProcess.StartBenchmarkApp(
            $"--urls \"http://127.0.0.1:0;http://unix:{path}\" --AcceptStrategy:Workers=2");

        // Before: the supervisor served the Unix socket itself and every worker died on "address already in use".
        await app.WaitForExitAsync(TestServer.Timeout);
        Assert.NotEqual(0, app.ExitCode);
        Assert.Contains($"Refusing to bind the Unix socket 'http://unix:{path}'", app.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(path), "nobody may serve the Unix socket");
    }

    [Fact]
    public async Task DotnetWatch_Workers_RunsSingleProcessWithOneWarning()
    {
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Workers=2",
            environment: new Dictionary<string, string> { ["DOTNET_WATCH"] = "1" });
        var address = await app.WaitForListeningAsync();

        using var client = Load.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            var answer = await client.GetStringAsync(new Uri(address, "/whoami"));
            Assert.Equal($"SingleProcess {app.Id}", string.Join(' ', answer.Split(' ').Take(2)));
        }

        Assert.Single(app.Output.Split('\n'), l => l.Contains("DOTNET_WATCH=1: running as one process", StringComparison.Ordinal));
        Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
    }
}
