using System.Diagnostics;

namespace BenchmarkApp;

/// <summary>
/// Test hook (--ChildFdProbe=true): in every process of the app, starts a child every 50 ms that lists its own
/// descriptors, and prints any socket or accept lock file it inherited as "fd-probe: leaked ..." (a listening socket
/// or a Serialized lock must never leak), and
/// SIGHUP, SIGTTIN or SIGTTOU blocked or ignored in the child as "fd-probe: terminal signals ...".
/// </summary>
internal sealed class ChildFdProbe : BackgroundService
{
    // Bits of SIGHUP (1), SIGTTIN (21) and SIGTTOU (22) in /proc/PID/status masks.
    private const ulong TerminalSignals = (1UL << 0) | (1UL << 20) | (1UL << 21);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var probes = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var start = new ProcessStartInfo("/bin/sh", ["-c", "for f in /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done; exec grep -E '^Sig(Blk|Ign):' /proc/self/status"])
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            using (var child = Process.Start(start)!)
            {
                var listing = await child.StandardOutput.ReadToEndAsync(stoppingToken);
                await child.WaitForExitAsync(stoppingToken);
                foreach (var line in listing.Split('\n').Where(l => l.Contains("socket:", StringComparison.Ordinal) || l.Contains("/kestrel-accept-", StringComparison.Ordinal)))
                {
                    Console.WriteLine($"fd-probe: leaked {line} into pid {child.Id}");
                }

                // A child starts with the terminal's signals (HUP, TTIN, TTOU) neither blocked nor ignored.
                foreach (var line in listing.Split('\n').Where(l => l.StartsWith("Sig", StringComparison.Ordinal)))
                {
                    if ((Convert.ToUInt64(line[7..].Trim(), 16) & TerminalSignals) != 0)
                    {
                        Console.WriteLine($"fd-probe: terminal signals {line} in pid {child.Id}");
                    }
                }
            }

            if (++probes % 20 == 0)
            {
                Console.WriteLine($"fd-probe: {probes} children checked in pid {Environment.ProcessId}");
            }

            await Task.Delay(50, stoppingToken);
        }
    }
}
