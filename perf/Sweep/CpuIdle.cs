using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// Waits until the machine is mostly idle (from /proc/stat) so measuring starts after the servers' background work
/// (tier-1 JIT after warm-up, GC, the kernel reaping TIME_WAIT sockets) rather than in the middle of it.
/// </summary>
internal static class CpuIdle
{
    public static async Task WaitAsync(TimeSpan limit, CancellationToken cancellationToken, double idleShare = 0.85)
    {
        var deadline = DateTime.UtcNow + limit;
        var (idle, total) = Read();
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(1000, cancellationToken);
            var (idleNow, totalNow) = Read();
            var share = totalNow == total ? 1 : (idleNow - idle) / (double)(totalNow - total);
            (idle, total) = (idleNow, totalNow);
            if (share >= idleShare)
            {
                return;
            }
        }
    }

    /// <summary>Idle (idle + iowait) and total jiffies of all CPUs.</summary>
    private static (long Idle, long Total) Read()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        return (fields[3] + fields[4], fields.Take(8).Sum());
    }
}
