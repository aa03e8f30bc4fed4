using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests;

/// <summary>A bad StatusEndpoint is reported with every other option error, before anything is bound.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class StatusEndpointOptionsTests
{
    [Theory]
    [InlineData("http://10.0.0.1:9100", "is not a loopback address")]
    [InlineData("http://0.0.0.0:9100", "is not a loopback address")]
    [InlineData("https://127.0.0.1:9100", "https is not served")]
    [InlineData("unix:run/status.sock", "a Unix socket path must be absolute")]
    [InlineData("garbage", "expected http://127.0.0.1:PORT")]
    [InlineData("http://127.0.0.1:9100/status", "no path, query")]
    public async Task StartAsync_BadStatusEndpoint_ListedWithTheOtherErrors(string endpoint, string expected)
    {
        var app = TestServer.Build(args: ["--WorkerProcesses:Workers=2", $"--WorkerProcesses:StatusEndpoint={endpoint}", "--AcceptStrategy:Acceptors=0"], workers: _ => { });
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            Assert.Equal(2, error.Failures.Count());
            Assert.Contains(error.Failures, f => f.StartsWith($"WorkerProcesses:StatusEndpoint = '{endpoint}' is not valid: ", StringComparison.Ordinal) && f.Contains(expected, StringComparison.Ordinal));
            Assert.Contains(error.Failures, f => f.StartsWith("AcceptStrategy:Acceptors = 0 is out of range", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task StartAsync_StatusEndpointWithoutWorkers_Refused()
    {
        var app = TestServer.Build(args: ["--WorkerProcesses:StatusEndpoint=http://127.0.0.1:0"], workers: _ => { });
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            var failure = Assert.Single(error.Failures);
            Assert.Equal("WorkerProcesses:StatusEndpoint = 'http://127.0.0.1:0' needs Workers > 0: the status view is the supervisor's, and one process has no supervisor.", failure);
        }
    }

    [Fact]
    public async Task StartAsync_EmptyStatusEndpoint_Off()
    {
        await using var server = await TestServer.StartAsync(TestServer.Build(args: ["--WorkerProcesses:StatusEndpoint="], workers: _ => { }));

        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(server.BaseAddress, "/foo")));
    }
}
