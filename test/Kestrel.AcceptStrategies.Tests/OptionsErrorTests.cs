using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests;

/// <summary>Bad options: only the real problems, printed once, without a stack trace.</summary>
[Collection(WorkerProcesses.Name)]
public sealed class OptionsErrorTests
{
    [Theory]
    [InlineData("--AcceptStrategy:MaxRequestsPerWorker=-5", "AcceptStrategy:MaxRequestsPerWorker = -5 is negative")]
    [InlineData("--AcceptStrategy:MaxWorkerLifetime=00:00:00.5", "AcceptStrategy:MaxWorkerLifetime = 00:00:00.5000000 is out of range: use 0 for no limit, or at least 00:00:01")]
    [InlineData("--AcceptStrategy:MaxWorkerLifetime=-00:01:00", "AcceptStrategy:MaxWorkerLifetime = -00:01:00 is out of range")]
    [InlineData("--AcceptStrategy:MaxWorkerMemoryMegabytes=-1", "AcceptStrategy:MaxWorkerMemoryMegabytes = -1 is negative: use 0 for no limit")]
    [InlineData("--AcceptStrategy:MaxRespawnBackoff=-00:00:01", "AcceptStrategy:MaxRespawnBackoff = -00:00:01 must be above zero")]
    [InlineData("--AcceptStrategy:RespawnBackoff=00:00:00", "AcceptStrategy:RespawnBackoff = 00:00:00 must be above zero")]
    [InlineData("--AcceptStrategy:WorkerStartTimeout=30.00:00:00", "AcceptStrategy:WorkerStartTimeout = 30.00:00:00 is too long")]
    public async Task StartAsync_OneBadValue_OneFailureOnly(string argument, string expected)
    {
        var app = TestServer.Build(args: [argument]);
        await using (app)
        {
            var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            // Not also "MinRequestsPerWorker = 0 is above MaxRequestsPerWorker = -5" (0 means 90% of Max).
            var failure = Assert.Single(error.Failures);
            Assert.StartsWith(expected, failure, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task BenchmarkApp_BadOptions_OneBlockWithoutStackTraceExitCode2()
    {
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Workers=2 --AcceptStrategy:MaxRequestsPerWorker=-5 --AcceptStrategy:Acceptors=0");
        await app.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(2, app.ExitCode);
        var output = app.Output;
        Assert.Single(output.Split('\n'), l => l.Contains("MaxRequestsPerWorker = -5 is negative", StringComparison.Ordinal));
        Assert.Single(output.Split('\n'), l => l.Contains("Acceptors = 0 is out of range", StringComparison.Ordinal));
        Assert.DoesNotContain("MinRequestsPerWorker", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("started in slot", output, StringComparison.Ordinal);
    }
}
