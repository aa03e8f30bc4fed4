using System.Diagnostics;
using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// Counts the system calls of a server's processes over one run with <c>perf stat -e raw_syscalls:sys_enter</c>
/// (threads started later are counted too). perf's own overhead is small but not nil: compare configurations that
/// were all counted the same way.
/// </summary>
internal sealed class SyscallCounter : IDisposable
{
    private const string Event = "raw_syscalls:sys_enter";
    private readonly Process _perf;
    private readonly Task<string> _stderr;

    private SyscallCounter(Process perf)
    {
        _perf = perf;
        _ = perf.StandardOutput.ReadToEndAsync();
        _stderr = perf.StandardError.ReadToEndAsync();
    }

    public static async Task<SyscallCounter> StartAsync(IEnumerable<int> pids, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("perf") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "stat", "-x,", "-e", Event, "-p", string.Join(',', pids) })
        {
            start.ArgumentList.Add(argument);
        }

        var counter = new SyscallCounter(Process.Start(start)!);
        // perf says nothing once it is attached; a moment's start keeps the run's first requests in the count.
        await Task.Delay(300, cancellationToken);
        if (counter._perf.HasExited)
        {
            throw new InvalidOperationException($"perf stat exited with {counter._perf.ExitCode}: {(await counter._stderr).Trim()}");
        }

        return counter;
    }

    /// <summary>Stops counting (SIGINT, as Ctrl+C would) and returns the count.</summary>
    public async Task<long> StopAsync()
    {
        _ = Libc.Kill(_perf.Id, Libc.SIGINT);
        await _perf.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var output = await _stderr;
        return Parse(output) ?? throw new InvalidOperationException($"perf stat counted no {Event}:\n{output.Trim()}");
    }

    /// <summary>The sum of the counts in <c>perf stat -x,</c> output (one line per event: count,unit,event,...).</summary>
    internal static long? Parse(string perfStatOutput)
    {
        long? total = null;
        foreach (var line in perfStatOutput.Split('\n'))
        {
            var fields = line.Split(',');
            if (fields.Length > 2 && fields[2] == Event && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            {
                total = (total ?? 0) + count;
            }
        }

        return total;
    }

    public void Dispose()
    {
        if (!_perf.HasExited)
        {
            _perf.Kill();
        }

        _perf.Dispose();
    }
}
