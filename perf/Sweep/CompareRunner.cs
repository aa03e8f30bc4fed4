using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// The <c>compare</c> command's measurement: every configuration up at once as its own server, each warmed, one
/// unrecorded pass, then rounds in alternating order (A B C, C B A, ...) so the machine's drift falls on every
/// configuration alike.
/// </summary>
internal sealed class CompareRunner(CompareOptions options, NetworkNamespace? ns, Progress progress)
{
    private readonly LoadGenerator _load = new(ns, options.Connections, options.AbRequests, options.WrkSeconds);

    /// <summary>The measured runs (the unrecorded pass left out) and each server's PSS after the last round.</summary>
    public async Task<(IReadOnlyList<CompareRun> Runs, IReadOnlyList<ServerMemory> Memory)> RunAsync(CancellationToken cancellationToken)
    {
        var configurations = options.Configurations;
        var servers = new List<ServerProcess>();
        try
        {
            // One at a time: .NET processes starting together on two cores would each take far longer.
            foreach (var c in configurations)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress.Phase($"starting {c.Label}", servers.Count, configurations.Count);
                var server = ServerProcess.Start(
                    c.Label, c.Workers, c.Arguments, c.Environment, c.App ?? ServerProcess.BenchmarkAppPath, SweepRunner.FreePort(ns, servers.Count), meterDirectory: null, ns);
                servers.Add(server);
                await server.WaitStartedAsync(TimeSpan.FromMinutes(2));
            }

            for (var i = 0; i < servers.Count && options.Warmup > 0; i++)
            {
                progress.Phase($"warming {servers[i].Label}", i, servers.Count);
                var requests = options.Warmup * configurations[i].ServingProcesses;
                // wrk runs for a time: at roughly 10,000 requests a second, as many as ab would send.
                await _load.RunAsync(
                    options.Mode, servers[i].Url, requests: requests, seconds: Math.Clamp(requests / 10_000, 1, 60), cancellationToken: cancellationToken);
            }

            progress.Phase("waiting for the machine to settle", 0, 1);
            await CpuIdle.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);

            var runs = new List<CompareRun>();
            // Round 0 is the unrecorded pass: right after warm-up the servers met first still ran slow (JIT and kernel
            // work left over from warming the rest).
            for (var round = 0; round <= options.Rounds; round++)
            {
                var order = Enumerable.Range(0, servers.Count).ToList();
                if (round % 2 == 0)
                {
                    order.Reverse();
                }

                var line = new List<string>();
                foreach (var i in order)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress.Phase(
                        $"{servers[i].Label} · {(round == 0 ? "unrecorded pass" : $"round {round}/{options.Rounds}")}",
                        round * servers.Count + line.Count, (options.Rounds + 1) * servers.Count);
                    var run = await MeasureAsync(servers[i], round, i, cancellationToken);
                    runs.Add(run);
                    line.Add(string.Create(CultureInfo.InvariantCulture, $"{servers[i].Label} {run.Load.RequestsPerSecond:0}"));
                }

                progress.Note($"{(round == 0 ? "unrecorded pass" : $"round {round}")}: {string.Join(" · ", line)}");
            }

            var memory = servers.Select(s => new ServerMemory(ProcessTree.PssKiB(s.Pid))).ToList();
            return (runs.Where(r => r.Round > 0).ToList(), memory);
        }
        finally
        {
            await Task.WhenAll(servers.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    private async Task<CompareRun> MeasureAsync(ServerProcess server, int round, int index, CancellationToken cancellationToken)
    {
        using var syscalls = options.Syscalls ? await SyscallCounter.StartAsync(ProcessTree.Members(server.Pid), cancellationToken) : null;
        var cpu = ProcessTree.CpuSeconds(server.Pid);
        var switches = ProcessTree.ContextSwitches(server.Pid);
        var load = await _load.RunAsync(options.Mode, server.Url, cancellationToken: cancellationToken);
        cpu = ProcessTree.CpuSeconds(server.Pid) - cpu;
        switches = ProcessTree.ContextSwitches(server.Pid) - switches;
        long? calls = syscalls is null ? null : await syscalls.StopAsync();
        return new CompareRun(round, index, load, cpu, Math.Max(0, switches), calls);
    }
}
