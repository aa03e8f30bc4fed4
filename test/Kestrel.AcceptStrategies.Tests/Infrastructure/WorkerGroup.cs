using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// The BenchmarkApp as a supervisor with real worker processes, on 127.0.0.1 port 0. Reads what happened from the
/// supervisor's log lines (spawns, readiness, exits with reasons) and kills every process it saw on dispose,
/// orphaned workers included.
/// </summary>
internal sealed partial class WorkerGroup : IAsyncDisposable
{
    private WorkerGroup(ChildProcess supervisor, Uri address)
    {
        Supervisor = supervisor;
        Address = address;
    }

    public ChildProcess Supervisor { get; }

    public Uri Address { get; }

    /// <summary>Starts a supervisor with <paramref name="workers"/> workers and waits until that many are ready.</summary>
    public static Task<WorkerGroup> StartAsync(
        int workers, AcceptStrategy strategy, string arguments = "", IDictionary<string, string>? environment = null) =>
        WaitReadyAsync(
            ChildProcess.StartBenchmarkApp(
                $"--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy={strategy} --AcceptStrategy:Acceptors=2 --AcceptStrategy:Workers={workers} {arguments}",
                environment: environment),
            workers);

    /// <summary>
    /// Starts a supervisor from <paramref name="app"/>, whose appsettings.json sets the AcceptStrategy section
    /// (Workers included: the command line would override it), and waits until <paramref name="workers"/> are ready.
    /// </summary>
    public static Task<WorkerGroup> StartAsync(AppCopy app, int workers, string arguments = "", IDictionary<string, string>? environment = null) =>
        WaitReadyAsync(ChildProcess.StartBenchmarkApp($"--urls=http://127.0.0.1:0 {arguments}", environment: environment, appPath: app.AppPath), workers);

    public IReadOnlyList<WorkerEvent> Started => Parse(StartedRegex());

    public IReadOnlyList<WorkerEvent> Ready => Parse(ReadyRegex());

    public IReadOnlyList<WorkerEvent> Exited => Parse(ExitedRegex());

    /// <summary>The most worker processes alive at once, from the supervisor's started and exited lines in order.</summary>
    public int PeakAlive
    {
        get
        {
            int alive = 0, peak = 0;
            foreach (var line in Supervisor.Output.Split('\n'))
            {
                if (StartedRegex().IsMatch(line))
                {
                    peak = Math.Max(peak, ++alive);
                }
                else if (ExitedRegex().IsMatch(line))
                {
                    alive--;
                }
            }

            return peak;
        }
    }

    /// <summary>Pids of workers started and not yet seen exiting.</summary>
    public IReadOnlyList<int> LivePids => [.. Started.Select(s => s.Pid).Except(Exited.Select(e => e.Pid))];

    /// <summary>Waits (without sleeping blindly: each new output line re-checks) until <paramref name="condition"/> holds.</summary>
    public async Task WaitUntilAsync(Func<WorkerGroup, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!condition(this))
        {
            var left = TimeSpan.FromSeconds((deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Not reached within {timeout}: {what}. Output:\n{Supervisor.Output}");
            }

            try
            {
                await Supervisor.WaitForNextLineAsync(left);
            }
            catch (TimeoutException)
            {
            }
        }
    }

    public void Signal(string signal) => Kill(Supervisor.Id, signal);

    public static void Kill(int pid, string signal)
    {
        using var kill = Process.Start("/bin/kill", ["-s", signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit(5_000);
    }

    /// <summary>Whether <paramref name="pid"/> is still running (a zombie waiting for its parent counts as gone).</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var pid in Started.Select(s => s.Pid).Where(IsRunning))
        {
            if (File.ReadAllText($"/proc/{pid}/cmdline").Contains("BenchmarkApp", StringComparison.Ordinal))
            {
                Kill(pid, "KILL");
            }
        }

        await Supervisor.DisposeAsync();
    }

    private static async Task<WorkerGroup> WaitReadyAsync(ChildProcess supervisor, int workers)
    {
        try
        {
            var address = await supervisor.WaitForListeningAsync();
            var group = new WorkerGroup(supervisor, address);
            await group.WaitUntilAsync(g => g.Ready.Count >= workers, TestServer.Timeout, $"{workers} worker(s) ready");
            return group;
        }
        catch
        {
            await supervisor.DisposeAsync();
            throw;
        }
    }

    private List<WorkerEvent> Parse(Regex regex) =>
    [
        .. Supervisor.Output.Split('\n').Select(l => regex.Match(l)).Where(m => m.Success).Select(m => new WorkerEvent(
            int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture),
            int.Parse(m.Groups["slot"].Value, CultureInfo.InvariantCulture),
            int.Parse(m.Groups["generation"].Value, CultureInfo.InvariantCulture),
            m.Groups["reason"].Value,
            m.Groups["budget"].Success ? long.Parse(m.Groups["budget"].Value, CultureInfo.InvariantCulture) : 0,
            m.Groups["requests"].Success ? long.Parse(m.Groups["requests"].Value, CultureInfo.InvariantCulture) : 0)),
    ];

    [GeneratedRegex(@"Worker (?<pid>\d+) started in slot (?<slot>\d+), generation (?<generation>\d+) \((?<reason>\w+)\); (?:request budget (?<budget>\d+)|no request budget)")]
    private static partial Regex StartedRegex();

    [GeneratedRegex(@"Worker (?<pid>\d+) \(slot (?<slot>\d+), generation (?<generation>\d+)\) is ready")]
    private static partial Regex ReadyRegex();

    [GeneratedRegex(@"Worker (?<pid>\d+) \(slot (?<slot>\d+), generation (?<generation>\d+)\) exited: (?<reason>\w+), (?<status>[^,]+), after (?<requests>\d+) request")]
    private static partial Regex ExitedRegex();
}
