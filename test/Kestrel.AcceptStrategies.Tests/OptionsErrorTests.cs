using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests;

/// <summary>Bad options: only the real problems, printed once, without a stack trace.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class OptionsErrorTests
{
    [Theory]
    [InlineData("--WorkerProcesses:MaxRequestsPerWorker=-5", "WorkerProcesses:MaxRequestsPerWorker = -5 is negative")]
    [InlineData("--WorkerProcesses:MaxWorkerLifetime=00:00:00.5", "WorkerProcesses:MaxWorkerLifetime = 00:00:00.5000000 is out of range: use 0 for no limit, or between 00:00:01 and 365.00:00:00")]
    [InlineData("--WorkerProcesses:MaxWorkerLifetime=-00:01:00", "WorkerProcesses:MaxWorkerLifetime = -00:01:00 is out of range")]
    [InlineData("--WorkerProcesses:MaxWorkerMemoryMegabytes=-1", "WorkerProcesses:MaxWorkerMemoryMegabytes = -1 is negative: use 0 for no limit")]
    [InlineData("--WorkerProcesses:MaxRespawnBackoff=-00:00:01", "WorkerProcesses:MaxRespawnBackoff = -00:00:01 is out of range: it must be above 0")]
    [InlineData("--WorkerProcesses:RespawnBackoff=00:00:00", "WorkerProcesses:RespawnBackoff = 00:00:00 is out of range: it must be above 0")]
    [InlineData("--WorkerProcesses:WorkerStartTimeout=30.00:00:00", "WorkerProcesses:WorkerStartTimeout = 30.00:00:00 is out of range: it must be above 0 and at most 01:00:00")]
    [InlineData("--WorkerProcesses:GracefulShutdownTimeout=30", "WorkerProcesses:GracefulShutdownTimeout = '30' is not valid: expected a duration as hh:mm:ss")]
    [InlineData("--WorkerProcesses:GracefulShutdownTimeout=30.00:00:00", "WorkerProcesses:GracefulShutdownTimeout = 30.00:00:00 is out of range")]
    public async Task StartAsync_OneBadValue_OneFailureOnly(string argument, string expected)
    {
        var app = TestServer.Build(args: [argument], workers: _ => { });
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            // Not also "MinRequestsPerWorker = 0 is above MaxRequestsPerWorker = -5" (0 means 90% of Max).
            var failure = Assert.Single(error.Failures);
            Assert.StartsWith(expected, failure, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(null, 2, "WorkerProcesses:Workers is 2 in the end, but configuration and UseWorkerProcesses's callback, from which the worker-mode services are chosen, ask for one process")]
    [InlineData("--WorkerProcesses:Workers=2", 0, "WorkerProcesses:Workers is 0 in the end, but configuration and UseWorkerProcesses's callback, from which the worker-mode services are chosen, ask for worker processes")]
    public async Task StartAsync_WorkersChangedOutsideUseWorkerProcesses_Refused(string? argument, int workers, string expected)
    {
        // The console's writers and the HTTP/3 refusal are chosen before the logging exists, from configuration and
        // UseWorkerProcesses's callback: a supervisor without them would split its lines, one process with them would
        // have its console changed unasked.
        var app = TestServer.Build(
            build: b => b.Services.PostConfigure<WorkerProcessOptions>(o => o.Workers = workers),
            args: argument is null ? [] : [argument],
            workers: _ => { });
        await using (app)
        {
            var error = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync().WaitAsync(TestServer.Timeout));

            var failure = Assert.Single(error.Failures);
            Assert.StartsWith(expected, failure, StringComparison.Ordinal);
            Assert.Contains("services.Configure<WorkerProcessOptions>", failure, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task BenchmarkApp_BadOptions_OneBlockWithoutStackTraceExitCode78()
    {
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=2 --WorkerProcesses:MaxRequestsPerWorker=-5 --AcceptStrategy:Acceptors=0");
        await app.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(78, app.ExitCode);
        var output = app.Output;
        Assert.Single(output.Split('\n'), l => l.Contains("MaxRequestsPerWorker = -5 is negative", StringComparison.Ordinal));
        Assert.Single(output.Split('\n'), l => l.Contains("Acceptors = 0 is out of range", StringComparison.Ordinal));
        Assert.DoesNotContain("MinRequestsPerWorker", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("started in slot", output, StringComparison.Ordinal);
    }
}
