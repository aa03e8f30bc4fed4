using System.Text.Json;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;

namespace Kestrel.AcceptStrategies.Tests.Worker;

/// <summary>Workers share the supervisor's output: every line a worker logs must say which worker wrote it.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerLogScopeTests
{
    [Fact]
    public async Task JsonLogs_EveryWorkerLine_CarriesRolePidSlotAndGeneration()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort);

        // A worker's own lines at start-up are the host's (BenchmarkApp shows Microsoft.Hosting.Lifetime): each of the
        // two workers' "Application started" names it, the supervisor's does not.
        static bool IsStarted(string line) => line.Contains("Application started", StringComparison.Ordinal);
        await group.Supervisor.WaitForLineAsync(_ => group.Supervisor.Lines.Count(IsStarted) >= 3, TestServer.Timeout);
        var started = group.Supervisor.Lines.Where(IsStarted).ToList();
        Assert.Equal(3, started.Count);
        var ready = group.Ready.ToDictionary(r => r.Pid);
        var labelled = new HashSet<int>();
        foreach (var line in started)
        {
            using var json = JsonDocument.Parse(line);
            if (!json.RootElement.TryGetProperty("Scopes", out var scopes) || scopes.GetArrayLength() == 0)
            {
                continue;
            }

            var scope = scopes[0];
            var pid = scope.GetProperty("Pid").GetInt32();
            Assert.Equal("Worker", scope.GetProperty("Role").GetString());
            Assert.True(ready.ContainsKey(pid), $"no worker {pid}: {line}");
            Assert.Equal((ready[pid].Slot, ready[pid].Generation), (scope.GetProperty("Slot").GetInt32(), scope.GetProperty("Generation").GetInt32()));
            labelled.Add(pid);
        }

        Assert.Equal(2, labelled.Count);

        // The supervisor's own lines carry no worker scope.
        var supervisorLine = group.Supervisor.Lines.First(l => l.Contains("\"Category\":\"Kestrel.AcceptStrategies.Supervisor\"", StringComparison.Ordinal));
        Assert.DoesNotContain("\"Role\":\"Worker\"", supervisorLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SimpleConsole_WorkerLinesPrefixedWithTheWorker_UnlessTheAppChoseOtherwise()
    {
        await using var shown = ChildProcess.StartBenchmarkApp("--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1");
        var line = await shown.WaitForLineAsync(l => l.Contains("Application started", StringComparison.Ordinal) && l.Contains("=> worker", StringComparison.Ordinal), TestServer.Timeout);
        Assert.Matches(@"=> worker \d+ slot 0 generation 1", line);

        await using var hidden = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=1 --Logging:Console:FormatterOptions:IncludeScopes=false");
        await hidden.WaitForLineAsync(l => l.Contains("is ready after", StringComparison.Ordinal), TestServer.Timeout);
        await hidden.WaitForLineAsync(_ => hidden.Lines.Count(l => l.Contains("Application started", StringComparison.Ordinal)) >= 2, TestServer.Timeout);
        Assert.DoesNotContain("=> worker", hidden.Output, StringComparison.Ordinal);
    }
}
