using System.Globalization;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// This process's own start-up so far: wall time since the kernel started it (its fork in the supervisor, so the
/// runtime's own start is counted) and the CPU time it has used (user + system, every thread).
/// </summary>
internal static class WorkerStartupTime
{
    /// <summary>USER_HZ: the unit of /proc's clock ticks, 100 on every Linux ABI .NET runs on.</summary>
    private const double TicksPerSecond = 100;

    /// <summary>Null when /proc could not be read (the worker then reports ready without figures).</summary>
    public static (TimeSpan Wall, TimeSpan Cpu)? Measure()
    {
        try
        {
            // Both clocks count from boot, suspend included, in 10 ms steps.
            var uptime = File.ReadAllText("/proc/uptime");
            var now = double.Parse(uptime.AsSpan(0, uptime.IndexOf(' ')), NumberStyles.Float, CultureInfo.InvariantCulture);
            var stat = File.ReadAllText("/proc/self/stat");

            // Fields after the command name in parentheses (which may hold spaces): state is field 3, starttime 22.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var started = long.Parse(fields[22 - 3], NumberStyles.None, CultureInfo.InvariantCulture) / TicksPerSecond;
            var wall = TimeSpan.FromSeconds(Math.Max(0, now - started));
            return (wall, Environment.CpuUsage.TotalTime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }
}
