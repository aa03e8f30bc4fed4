using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>CPU time and memory of a server and its worker processes, read from /proc.</summary>
internal static class ProcessTree
{
    private static readonly long s_pageKiB = Environment.SystemPageSize / 1024;

    /// <summary>The process and its direct children (the supervisor's workers).</summary>
    public static IReadOnlyList<int> Members(int pid)
    {
        // /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN) names each thread's children: a few reads instead of a
        // scan of every process on the machine, which would itself load the machine being measured.
        var members = new List<int> { pid };
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                var children = File.ReadAllText(Path.Combine(task, "children"));
                foreach (var child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    members.Add(int.Parse(child, CultureInfo.InvariantCulture));
                }
            }

            return members;
        }
        catch (FileNotFoundException)
        {
            // No CONFIG_PROC_CHILDREN: find the children by their parent pid.
        }
        catch (DirectoryNotFoundException)
        {
            return members;
        }

        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var child) && child != pid && Stat(child) is { } fields && fields[1] == pid)
            {
                members.Add(child);
            }
        }

        return members;
    }

    /// <summary>
    /// CPU seconds of the server: the process and its live workers (utime + stime), plus the workers it has already
    /// reaped (its cutime + cstime), so recycled workers' time is not lost.
    /// </summary>
    public static double CpuSeconds(int pid)
    {
        long ticks = 0;
        foreach (var member in Members(pid))
        {
            if (Stat(member) is { } fields)
            {
                ticks += fields[11] + fields[12] + (member == pid ? fields[13] + fields[14] : 0);
            }
        }

        return ticks / (double)ClockTicksPerSecond;
    }

    /// <summary>Resident memory of the process and its children together, in KiB.</summary>
    public static long RssKiB(int pid)
    {
        long kib = 0;
        foreach (var member in Members(pid))
        {
            try
            {
                // statm: size resident shared ... in pages.
                var statm = File.ReadAllText($"/proc/{member}/statm").Split(' ');
                kib += long.Parse(statm[1], CultureInfo.InvariantCulture) * s_pageKiB;
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return kib;
    }

    /// <summary>
    /// Context switches so far (voluntary + involuntary) of every live thread of the process and its children. A thread
    /// that exits takes its count with it, so over a run this is a floor.
    /// </summary>
    public static long ContextSwitches(int pid)
    {
        long total = 0;
        foreach (var member in Members(pid))
        {
            try
            {
                foreach (var task in Directory.EnumerateDirectories($"/proc/{member}/task"))
                {
                    total += StatusSwitches(File.ReadAllText(Path.Combine(task, "status")));
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return total;
    }

    /// <summary>voluntary_ctxt_switches + nonvoluntary_ctxt_switches of one /proc/PID/task/TID/status.</summary>
    internal static long StatusSwitches(string status)
    {
        long total = 0;
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
            {
                total += long.Parse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim(), CultureInfo.InvariantCulture);
            }
        }

        return total;
    }

    /// <summary>
    /// Proportional set size (KiB) of the process and of each child, in <see cref="Members"/> order: shared pages (the
    /// runtime, the app's code) are split among the processes that map them, so the sum is what the group costs.
    /// </summary>
    public static IReadOnlyList<long> PssKiB(int pid)
    {
        var pss = new List<long>();
        foreach (var member in Members(pid))
        {
            try
            {
                pss.Add(SmapsRollupPss(File.ReadAllText($"/proc/{member}/smaps_rollup")));
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return pss;
    }

    /// <summary>The <c>Pss:</c> line of /proc/PID/smaps_rollup, in KiB.</summary>
    internal static long SmapsRollupPss(string smapsRollup)
    {
        foreach (var line in smapsRollup.Split('\n'))
        {
            if (line.StartsWith("Pss:", StringComparison.Ordinal))
            {
                return long.Parse(line["Pss:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new FormatException("No Pss: line in smaps_rollup.");
    }

    // sysconf(_SC_CLK_TCK) is 100 on every Linux ABI .NET runs on.
    private const long ClockTicksPerSecond = 100;

    /// <summary>The numeric fields of /proc/PID/stat after the command name; [1] is the parent pid, [11..14] the CPU times.</summary>
    private static long[]? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var afterName = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            // afterName[0] is the state letter; keep indices as in proc(5) minus 2 (pid and comm).
            var fields = new long[afterName.Length];
            for (var i = 1; i < afterName.Length; i++)
            {
                _ = long.TryParse(afterName[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out fields[i]);
            }

            return fields;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
