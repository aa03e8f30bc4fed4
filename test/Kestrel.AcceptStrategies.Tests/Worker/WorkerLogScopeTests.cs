using System.Text.Json;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;

namespace Kestrel.AcceptStrategies.Tests.Worker;

/// <summary>Workers share the supervisor's output: every line a worker logs must say which worker wrote it.</summary>
[Collection(WorkerProcesses.Name)]
public sealed class WorkerLogScopeTests
{
    [Fact]
    public async Task JsonLogs_EveryWorkerLine_CarriesRolePidSlotAndGeneration()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort);

        var workerLines = group.Supervisor.Lines.Where(l => l.Contains("\"Category\":\"Kestrel.AcceptStrategies.Worker\"", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(workerLines);
        var ready = group.Ready.ToDictionary(r => r.Pid);
        foreach (var line in workerLines)
        {
            using var json = JsonDocument.Parse(line);
            var scope = json.RootElement.GetProperty("Scopes")[0];
            var pid = scope.GetProperty("Pid").GetInt32();
            Assert.Equal("Worker", scope.GetProperty("Role").GetString());
            Assert.True(ready.ContainsKey(pid), $"no worker {pid}: {line}");
            Assert.Equal((ready[pid].Slot, ready[pid].Generation), (scope.GetProperty("Slot").GetInt32(), scope.GetProperty("Generation").GetInt32()));
        }

        // The supervisor's own lines carry no worker scope.
        var supervisorLine = group.Supervisor.Lines.First(l => l.Contains("\"Category\":\"Kestrel.AcceptStrategies.Supervisor\"", StringComparison.Ordinal));
        Assert.DoesNotContain("\"Role\":\"Worker\"", supervisorLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SimpleConsole_WorkerLinesPrefixedWithTheWorker_UnlessTheAppChoseOtherwise()
    {
        await using var shown = ChildProcess.StartBenchmarkApp("--urls=http://127.0.0.1:0 --AcceptStrategy:Workers=1");
        var line = await shown.WaitForLineAsync(l => l.Contains("warm-up request GET", StringComparison.Ordinal), TestServer.Timeout);
        Assert.Matches(@"=> worker \d+ slot 0 generation 1", line);

        await using var hidden = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Workers=1 --Logging:Console:FormatterOptions:IncludeScopes=false");
        line = await hidden.WaitForLineAsync(l => l.Contains("warm-up request GET", StringComparison.Ordinal), TestServer.Timeout);
        Assert.DoesNotContain("=> worker", line, StringComparison.Ordinal);
    }
}
