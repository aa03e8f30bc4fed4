using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// Starts every configuration as its own server at once, warms each, then measures them interleaved: for every round
/// and load mode, each server in turn, the order reversed every other time (A B C C B A), so the machine's drift
/// falls on every configuration alike.
/// </summary>
internal sealed class SweepRunner(SweepOptions options, IReadOnlyList<LoadMode> modes, NetworkNamespace? ns, Progress progress)
{
    private readonly LoadGenerator _load = new(ns, options.Connections, options.AbRequests, options.WrkSeconds);
    private readonly Dictionary<ServerProcess, (int Index, MeterSnapshot Before, DateTimeOffset End)> _pending = [];
    private readonly Dictionary<ServerProcess, ServerConfiguration> _configurations = [];

    /// <summary>Workers of the recycling points: two, so one recycles while the other serves.</summary>
    public const int RecyclingWorkers = 2;

    public static IReadOnlyList<ServerConfiguration> Configurations(SweepOptions options)
    {
        IEnumerable<ServerConfiguration> grid =
        [
            ServerConfiguration.Baseline,
            .. from strategy in options.Strategies
               from acceptors in options.Acceptors
               from workers in options.Workers
               select new ServerConfiguration(strategy, acceptors, workers),
        ];

        // Each budget with its own unlimited reference (added when --workers lacks 2), so every ratio is same-run.
        var recycling =
            from strategy in options.Strategies
            from budget in options.MaxRequests.Where(b => b > 0)
            let point = new ServerConfiguration(strategy, options.Acceptors[0], RecyclingWorkers, budget)
            from configuration in new[] { point.Unlimited, point }
            select configuration;
        return grid.Concat(recycling).Distinct().ToList();
    }

    public async Task<IReadOnlyList<Measurement>> RunAsync(CancellationToken cancellationToken)
    {
        var configurations = Configurations(options);
        var meterRoot = Directory.CreateTempSubdirectory("accept-sweep-").FullName;
        var servers = new List<ServerProcess>();
        try
        {
            // One at a time: a hundred .NET processes starting together on two cores would each take a minute.
            foreach (var configuration in configurations)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress.Phase($"starting {configuration.Label}", servers.Count, configurations.Count);
                var server = ServerProcess.Start(
                    configuration, options.App ?? ServerProcess.BenchmarkAppPath, FreePort(ns, servers.Count), Path.Combine(meterRoot, $"server{servers.Count}"), ns);
                servers.Add(server);
                _configurations[server] = configuration;
                await server.WaitStartedAsync(TimeSpan.FromMinutes(2));
            }

            // Warm every code path the measurement will take: each load mode in turn (ab sends HTTP/1.0, wrk HTTP/1.1
            // with or without "Connection: close"), or the first runs pay for tier-1 JIT in every process at once.
            for (var i = 0; i < servers.Count && options.Warmup > 0; i++)
            {
                progress.Phase($"warming {_configurations[servers[i]].Label}", i, servers.Count);
                var requests = options.Warmup * _configurations[servers[i]].ServingProcesses / modes.Count;
                // wrk runs for a time: at roughly 10,000 requests a second, as many as ab would send.
                foreach (var mode in modes)
                {
                    await _load.RunAsync(
                        mode, servers[i].Url, requests: Math.Max(requests, 100), seconds: Math.Clamp(requests / 10_000, 1, 30),
                        cancellationToken: cancellationToken);
                }
            }

            progress.Phase("waiting for the machine to settle", 0, 1);
            await CpuIdle.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);

            var measurements = new List<Measurement>();
            // A smoke check (--quick) skips the settling pass.
            var firstRound = options.Quick ? 1 : 0;
            var total = (options.Rounds + 1 - firstRound) * modes.Count * servers.Count;
            var done = 0;
            var clock = Stopwatch.StartNew();
            // Round 0 is run like the others and thrown away: on this kind of machine the first pass after warm-up
            // still ran slow for the servers it met first (JIT and kernel work left over from the warm-up of the
            // rest), which no single server shows on its own.
            for (var round = firstRound; round <= options.Rounds; round++)
            {
                for (var m = 0; m < modes.Count; m++)
                {
                    var order = (round + m) % 2 == 1 ? servers : Enumerable.Reverse(servers).ToList();
                    foreach (var server in order)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        progress.Measuring(_configurations[server], modes[m], round, options.Rounds, done, total,
                            done == 0 ? null : clock.Elapsed / done * (total - done));
                        measurements.Add(await MeasureAsync(server, modes[m], round, measurements, cancellationToken));
                        done++;
                    }
                }
            }

            foreach (var server in servers)
            {
                await CompletePendingAsync(server, measurements, cancellationToken);
            }

            progress.Done(clock.Elapsed);
            return measurements.Where(m => m.Round > 0).ToList();
        }
        finally
        {
            await Task.WhenAll(servers.Select(s => s.DisposeAsync().AsTask()));
            Directory.Delete(meterRoot, recursive: true);
        }
    }

    private async Task<Measurement> MeasureAsync(
        ServerProcess server, LoadMode mode, int round, List<Measurement> measurements, CancellationToken cancellationToken)
    {
        var configuration = _configurations[server];
        // The counters after this server's previous run are its counters before this one; reading them now rather
        // than right after that run means no wait for the workers' next heartbeat, since other servers ran between.
        var before = configuration.IsBaseline ? null : await CompletePendingAsync(server, measurements, cancellationToken);
        var cpuBefore = ProcessTree.CpuSeconds(server.Pid);
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var peak = SamplePeakRssAsync(server.Pid, sampling.Token);

        LoadResult load;
        string? error = null;
        try
        {
            load = await _load.RunAsync(mode, server.Url, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            load = new LoadResult(0, 0, 0, double.NaN, double.NaN);
            error = $"{configuration.Label}, {mode}, round {round}: {e.Message}";
        }

        var cpu = ProcessTree.CpuSeconds(server.Pid) - cpuBefore;
        await sampling.CancelAsync();
        var peakRss = await peak;

        if (before is not null)
        {
            _pending[server] = (measurements.Count, before, DateTimeOffset.UtcNow);
        }

        return new Measurement(
            configuration, mode, round, load, load.Completed == 0 ? double.NaN : cpu * 1000 / load.Completed,
            peakRss, WorkerFairness: null, AcceptorFairness: null, error);
    }

    /// <summary>
    /// Fills in the fairness of the server's last run from its counters now (waiting, if need be, until every process
    /// has written them since that run ended) and returns those counters.
    /// </summary>
    private async Task<MeterSnapshot> CompletePendingAsync(ServerProcess server, List<Measurement> measurements, CancellationToken cancellationToken)
    {
        if (!_pending.Remove(server, out var pending))
        {
            return MeterSnapshot.Read(server.MeterDirectory!);
        }

        var after = await FreshSnapshotAsync(server, pending.End, cancellationToken);
        var c = _configurations[server];
        measurements[pending.Index] = measurements[pending.Index] with
        {
            WorkerFairness = c.Workers >= 2 ? JainFairness.Index(MeterSnapshot.ConnectionsPerWorker(pending.Before, after, c.Workers)) : null,
            AcceptorFairness = JainFairness.Index(MeterSnapshot.ConnectionsPerAcceptor(pending.Before, after, c.Workers, c.Acceptors)),
        };

        return after;
    }

    /// <summary>
    /// The server's counters once every connection of a run that ended at <paramref name="end"/> is in them: workers
    /// report to the supervisor every 100 ms while serving, and each process rewrites its file within 100 ms of a change.
    /// </summary>
    private static async Task<MeterSnapshot> FreshSnapshotAsync(ServerProcess server, DateTimeOffset end, CancellationToken cancellationToken)
    {
        var wait = end + TimeSpan.FromMilliseconds(500) - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }

        return MeterSnapshot.Read(server.MeterDirectory!);
    }

    private static async Task<long> SamplePeakRssAsync(int pid, CancellationToken cancellationToken)
    {
        long peak = ProcessTree.RssKiB(pid);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                peak = Math.Max(peak, ProcessTree.RssKiB(pid));
            }
        }
        catch (OperationCanceledException)
        {
        }

        return Math.Max(peak, ProcessTree.RssKiB(pid));
    }

    /// <summary>Inside a private namespace every port is free; outside, ask the kernel for one.</summary>
    internal static int FreePort(NetworkNamespace? ns, int index)
    {
        if (ns is not null)
        {
            return 5200 + index;
        }

        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
