using System.Globalization;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>A process's resident set as the kernel counts it: <c>VmRSS</c> in <c>/proc/PID/status</c>.</summary>
internal static class ResidentMemory
{
    /// <summary>In bytes; null if the process is gone (or was never there) or the line cannot be read.</summary>
    public static long? Read(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                // "VmRSS:\t  123456 kB"
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var value = line.AsSpan(6).Trim();
                    var space = value.IndexOf(' ');
                    return long.TryParse(space > 0 ? value[..space] : value, NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Exited between its heartbeat and this read: its exit is reported on its own.
        }

        return null;
    }
}
