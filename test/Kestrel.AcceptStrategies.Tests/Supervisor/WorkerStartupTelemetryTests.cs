using System.Diagnostics;
using System.Globalization;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// Each worker measures its own start-up (wall time since its process started, CPU time) and reports it with
/// <c>ready</c>; the supervisor logs it in WorkerReady and records it in two Meter histograms.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerStartupTelemetryTests : IDisposable
{
    private const string DurationName = "accept_strategies.worker.startup.duration";
    private const string CpuTimeName = "accept_strategies.worker.startup.cpu_time";

    private readonly string _directory = Directory.CreateTempSubdirectory("startup-telemetry-test-").FullName;

    [Fact]
    public async Task Ready_TwoWorkers_LogTheirOwnWallAndCpuTime()
    {
        await using var group = await WorkerGroup.StartAsync(workers: 2, AcceptStrategy.ReusePort);

        var ready = group.EventsOf(LogEvents.WorkerReady);
        Assert.Equal(2, ready.Count);
        foreach (var e in ready)
        {
            var wall = e.Long("ProcessMilliseconds");
            var cpu = e.Long("CpuMilliseconds");

            // A JIT worker runs code before it is ready: some CPU, some wall time. CPU time cannot exceed the wall time
            // on every core at once (10 ms ticks and rounding are the slack).
            Assert.True(wall > 0, e.Message);
            Assert.True(cpu > 0, e.Message);
            Assert.True(cpu <= wall * Environment.ProcessorCount + 50, e.Message);

            // The worker's clock starts at its fork, a little before the supervisor's (after the spawn returns): it
            // measures this start, not the machine's uptime or some other process's (generous slack for a loaded box).
            Assert.True(wall <= e.Long("StartupMilliseconds") + 5_000, e.Message);
            Assert.True(e.Long("StartupMilliseconds") > 0, e.Message);
        }
    }

    [Fact]
    public async Task Histograms_WorkersStartedAndRecycled_OneMeasurementPerStart()
    {
        await using var group = await WorkerGroup.StartAsync(
            workers: 2, AcceptStrategy.ReusePort, $"--WorkerProcesses:MaxRequestsPerWorker=20 --MeterSnapshotPath={_directory}");

        // 100 requests with a budget of 18-20 per worker: workers recycle; wait until every worker started is ready.
        Assert.Empty(await Load.RunAsync(group.Address, total: 100, concurrency: 4, connectionClose: true));
        await group.WaitUntilAsync(
            g => g.Ready.Count >= 3 && g.Ready.Count == g.Started.Count, TestServer.Timeout, "replacements ready");

        // The snapshot file is rewritten within 100 ms of a change: poll it (bounded) until it holds every start.
        var path = Path.Combine(_directory, $"{group.Supervisor.Id.ToString(CultureInfo.InvariantCulture)}.tsv");
        var clock = Stopwatch.StartNew();
        Dictionary<string, long> counts;
        do
        {
            await Task.Delay(50);
            counts = ReadCounts(path);
        }
        while (Sum(counts, DurationName) < group.Ready.Count && clock.Elapsed < TestServer.Timeout);

        var ready = group.EventsOf(LogEvents.WorkerReady);
        Assert.Equal(ready.Count, Sum(counts, DurationName));
        Assert.Equal(ready.Count, Sum(counts, CpuTimeName));
        foreach (var slot in ready.GroupBy(e => e.Int("Slot")))
        {
            Assert.Equal(slot.Count(), counts.GetValueOrDefault($"{DurationName}\tworker.slot={slot.Key.ToString(CultureInfo.InvariantCulture)}"));
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static long Sum(Dictionary<string, long> counts, string instrument) =>
        counts.Where(c => c.Key.StartsWith(instrument + "\t", StringComparison.Ordinal) || c.Key == instrument).Sum(c => c.Value);

    /// <summary>"instrument[\ttag=value]*\tcount" lines after a header line, as BenchmarkApp's MeterSnapshotWriter writes them.</summary>
    private static Dictionary<string, long> ReadCounts(string path)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (FileNotFoundException)
        {
            return counts;
        }

        foreach (var line in lines.Skip(1))
        {
            var cut = line.LastIndexOf('\t');
            if (cut > 0)
            {
                counts[line[..cut]] = long.Parse(line[(cut + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return counts;
    }
}
