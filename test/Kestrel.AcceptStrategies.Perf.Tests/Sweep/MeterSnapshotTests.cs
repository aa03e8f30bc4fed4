using System.Diagnostics;
using Kestrel.AcceptStrategies.Sweep;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>The sweep's fairness figures come from the library's Meter in every process, as BenchmarkApp writes it.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class MeterSnapshotTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("meter-snapshot-test-").FullName;

    [Fact]
    public async Task ConnectionsPerWorkerAndAcceptor_WorkerGroup_AddUpToTheConnectionsMade()
    {
        await using var group = await WorkerGroup.StartAsync(
            workers: 2, AcceptStrategy.ReusePort, $"--MeterSnapshotPath={_directory}");
        var before = MeterSnapshot.Read(_directory);

        Assert.Empty(await Load.RunAsync(group.Address, total: 300, concurrency: 10, connectionClose: true));

        // Workers report to the supervisor every 100 ms and every process rewrites its file every 100 ms, each on its
        // own clock: poll the files (bounded) until the supervisor's counters and every worker's own hold every connection.
        var clock = Stopwatch.StartNew();
        MeterSnapshot after;
        do
        {
            await Task.Delay(50);
            after = MeterSnapshot.Read(_directory);
        }
        while ((MeterSnapshot.ConnectionsPerWorker(before, after, 2).Sum() < 300
                || MeterSnapshot.ConnectionsPerAcceptor(before, after, workers: 2, acceptors: 2).Sum() < 300)
            && clock.Elapsed < TestServer.Timeout);

        var perWorker = MeterSnapshot.ConnectionsPerWorker(before, after, 2);
        var perAcceptor = MeterSnapshot.ConnectionsPerAcceptor(before, after, workers: 2, acceptors: 2);
        Assert.Equal(300, perWorker.Sum());
        Assert.Equal(4, perAcceptor.Count);
        Assert.Equal(300, perAcceptor.Sum());
        // Four ReusePort sockets: the kernel's hash spreads 300 connections over all of them.
        Assert.All(perAcceptor, share => Assert.True(share > 0, string.Join(", ", perAcceptor)));
        Assert.InRange(JainFairness.Index(perAcceptor)!.Value, 0.5, 1.0);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
