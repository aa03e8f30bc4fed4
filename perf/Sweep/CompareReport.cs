using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>The <c>compare</c> report: the command, how it was measured, and one Markdown table, ready to paste.</summary>
internal static partial class CompareReport
{
    public static string Format(CompareOptions options, IReadOnlyList<CompareRow> rows, string command, string setting, IEnumerable<string> notes)
    {
        var syscalls = rows.Any(r => r.SyscallsPerRequest is not null);
        var memory = rows.Any(r => r.Memory is not null);
        var md = new StringBuilder();
        md.Append(CultureInfo.InvariantCulture, $"`{command}`\n\n");
        md.Append(CultureInfo.InvariantCulture,
            $"{LoadCommand(options)}, {(options.KeepAlive ? "keep-alive" : "one connection per request")}; {options.Rounds} rounds after {options.Warmup:N0} warm-up requests per " +
            $"serving process and one unrecorded pass, all servers up at once, order reversed every other round; {setting}.\n\n");

        md.Append("| configuration | req/s | min–max | vs first | failed | CPU ms / 1k req | CPU vs first | context switches / req |");
        md.Append(syscalls ? " system calls / req |" : "").Append(memory ? " processes | PSS MiB | PSS MiB per serving process |" : "").Append('\n');
        md.Append("|---|---:|---:|---:|---:|---:|---:|---:|").Append(syscalls ? "---:|" : "").Append(memory ? "---:|---:|---:|" : "").Append('\n');
        foreach (var r in rows)
        {
            md.Append(CultureInfo.InvariantCulture,
                $"| {r.Label} | {F(r.RequestsPerSecond, "0")} | {F(r.MinRequestsPerSecond, "0")}–{F(r.MaxRequestsPerSecond, "0")} " +
                $"| {F(r.RatioToFirst, "0.00")} | {r.Failed} | {F(r.CpuMillisecondsPer1000, "0.0")} | {F(r.CpuRatioToFirst, "0.00")} " +
                $"| {F(r.SwitchesPerRequest, "0.00")} |");
            if (syscalls)
            {
                md.Append(CultureInfo.InvariantCulture, $" {(r.SyscallsPerRequest is { } s ? F(s, "0.0") : "–")} |");
            }

            if (memory)
            {
                md.Append(r.Memory is { } m
                    ? string.Create(CultureInfo.InvariantCulture, $" {m.Processes} | {F(m.TotalKiB / 1024.0, "0.0")} | {F(m.ServingKiB / 1024.0, "0.0")} |")
                    : " – | – | – |");
            }

            md.Append('\n');
        }

        md.Append("\n\"vs first\": median of the per-round ratios to the first row's run in the same round. CPU: utime + stime of the ")
          .Append("server's processes (reaped workers included) per 1,000 requests. Context switches: voluntary + involuntary, every live thread.");
        if (syscalls)
        {
            md.Append(" System calls: `perf stat -e raw_syscalls:sys_enter` on the server's processes (perf adds a little to every row).");
        }

        if (memory)
        {
            md.Append(" PSS after the last round: the group's total and the median of its serving processes (the workers, or the one process).");
        }

        md.Append('\n');
        foreach (var note in notes)
        {
            md.Append("\n- ").Append(note.ReplaceLineEndings(" "));
        }

        return md.ToString().TrimEnd() + "\n";
    }

    /// <summary>The load generator's command line as compare runs it (less the URL).</summary>
    internal static string LoadCommand(CompareOptions o) => o.Tool == "ab"
        ? string.Create(CultureInfo.InvariantCulture, $"`ab -c {o.Connections} -n {o.AbRequests}{(o.KeepAlive ? " -k" : "")}`")
        : string.Create(CultureInfo.InvariantCulture, $"`wrk -t1 -c{o.Connections} -d{o.WrkSeconds}s{(o.KeepAlive ? "" : " -H 'Connection: close'")}`");

    /// <summary>"wrk 4.1.0" from a tool's first line about itself ("wrk debian/4.1.0-3+b2 [epoll] Copyright ...").</summary>
    internal static string ToolVersion(string tool, string? firstLine) =>
        firstLine is not null && VersionRegex().Match(firstLine) is { Success: true } m ? $"{tool} {m.Value}" : tool;

    /// <summary>An argument as a POSIX shell would need it: quoted when it holds anything but plain characters.</summary>
    internal static string ShellQuote(string argument) =>
        argument.Length > 0 && PlainRegex().IsMatch(argument) ? argument : "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string F(double value, string format) => double.IsNaN(value) ? "–" : value.ToString(format, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"\d+\.\d+(?:\.\d+)?")]
    private static partial Regex VersionRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_./:=,+@%-]+$")]
    private static partial Regex PlainRegex();
}
