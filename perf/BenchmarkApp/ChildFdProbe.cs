using System.Diagnostics;

namespace BenchmarkApp;

/// <summary>
/// Test hook (--ChildFdProbe=true): in every process of the app, starts a child every 50 ms that lists its own
/// descriptors, and prints any socket it inherited as "fd-probe: leaked ...". A listening socket must never leak.
/// </summary>
internal sealed class ChildFdProbe : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var probes = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var start = new ProcessStartInfo("/bin/sh", ["-c", "for f in /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done"])
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            using (var child = Process.Start(start)!)
            {
                var listing = await child.StandardOutput.ReadToEndAsync(stoppingToken);
                await child.WaitForExitAsync(stoppingToken);
                foreach (var line in listing.Split('\n').Where(l => l.Contains("socket:", StringComparison.Ordinal)))
                {
                    Console.WriteLine($"fd-probe: leaked {line} into pid {child.Id}");
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
