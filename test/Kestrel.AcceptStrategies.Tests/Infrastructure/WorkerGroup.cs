using System.Diagnostics;
using System.Globalization;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// The BenchmarkApp as a supervisor with real worker processes, on 127.0.0.1 port 0. Reads what happened from the
/// supervisor's log lines (spawns, readiness, exits with reasons) and kills every process it saw on dispose,
/// orphaned workers included.
/// </summary>
internal sealed class WorkerGroup : IAsyncDisposable
{
    private readonly List<LogEvent> _events = [];
    private int _parsed;

    private WorkerGroup(ChildProcess supervisor, Uri address)
    {
        Supervisor = supervisor;
        Address = address;
    }

    public ChildProcess Supervisor { get; }

    public Uri Address { get; }

    /// <summary>Every address the supervisor's Kestrel listens on, in binding order (<see cref="Address"/> first).</summary>
    public IReadOnlyList<Uri> Addresses => Supervisor.ListeningAddresses;

    /// <summary>
    /// Starts a supervisor with <paramref name="workers"/> workers and waits until that many (or <paramref name="ready"/>) are ready.
    /// <paramref name="urls"/> is Kestrel's list (<c>;</c>-separated), <see cref="Addresses"/> what it bound.
    /// </summary>
    public static Task<WorkerGroup> StartAsync(
        int workers, AcceptStrategy strategy, string arguments = "", IDictionary<string, string>? environment = null,
        string urls = "http://127.0.0.1:0", int acceptors = 2, int? ready = null) =>
        WaitReadyAsync(
            ChildProcess.StartBenchmarkApp(
                $"\"--urls={urls}\" --AcceptStrategy:Strategy={strategy} --AcceptStrategy:Acceptors={acceptors} --WorkerProcesses:Workers={workers} {arguments}",
                environment: JsonLogs(environment)),
            ready ?? workers);

    /// <summary>
    /// Starts a supervisor from <paramref name="app"/>, whose appsettings.json sets the AcceptStrategy section
    /// (Workers included: the command line would override it), and waits until <paramref name="workers"/> are ready.
    /// </summary>
    public static Task<WorkerGroup> StartAsync(AppCopy app, int workers, string arguments = "", IDictionary<string, string>? environment = null) =>
        WaitReadyAsync(ChildProcess.StartBenchmarkApp($"--urls=http://127.0.0.1:0 {arguments}", environment: JsonLogs(environment), appPath: app.AppPath), workers);

    public IReadOnlyList<WorkerEvent> Started =>
    [
        .. EventsOf(LogEvents.WorkerStarted).Select(e => new WorkerEvent(e.Int("Pid"), e.Int("Slot"), e.Int("Generation"), e["Reason"], BudgetOf(e["Budget"]))),
    ];

    public IReadOnlyList<WorkerEvent> Ready => [.. EventsOf(LogEvents.WorkerReady).Select(e => new WorkerEvent(e.Int("Pid"), e.Int("Slot"), e.Int("Generation"), "", 0))];

    public IReadOnlyList<WorkerEvent> Exited =>
    [
        .. EventsOf(LogEvents.WorkerExited).Select(e => new WorkerEvent(e.Int("Pid"), e.Int("Slot"), e.Int("Generation"), e["Reason"], 0, e.Long("Requests"))),
    ];

    /// <summary>The most worker processes alive at once, from the supervisor's started and exited events in order.</summary>
    public int PeakAlive
    {
        get
        {
            int alive = 0, peak = 0;
            foreach (var e in Events.Where(IsLibrary))
            {
                alive += e.EventId == LogEvents.WorkerStarted ? 1 : e.EventId == LogEvents.WorkerExited ? -1 : 0;
                peak = Math.Max(peak, alive);
            }

            return peak;
        }
    }

    /// <summary>Every log event of the group (supervisor and workers share its output), in order.</summary>
    public IReadOnlyList<LogEvent> Events
    {
        get
        {
            lock (_events)
            {
                var lines = Supervisor.Lines;
                for (; _parsed < lines.Count; _parsed++)
                {
                    if (LogEvent.TryParse(lines[_parsed], out var e))
                    {
                        _events.Add(e);
                    }
                }

                return [.. _events];
            }
        }
    }

    /// <summary>The library's events with <paramref name="eventId"/> (other categories reuse the numbers).</summary>
    public IReadOnlyList<LogEvent> EventsOf(int eventId) => [.. Events.Where(e => e.EventId == eventId && IsLibrary(e))];

    /// <summary>Pids of workers started and not yet seen exiting.</summary>
    public IReadOnlyList<int> LivePids => [.. Started.Select(s => s.Pid).Except(Exited.Select(e => e.Pid))];

    /// <summary>Waits (without sleeping blindly: each new output line re-checks) until <paramref name="condition"/> holds.</summary>
    public async Task WaitUntilAsync(Func<WorkerGroup, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + Timestamps.Units(timeout, Stopwatch.Frequency);
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

    /// <summary>Until the supervisor this group started has exited (a successor supervisor may go on writing to its output), bounded.</summary>
    public async Task WaitForSupervisorExitAsync(TimeSpan timeout)
    {
        try
        {
            await Supervisor.Exited.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"supervisor {Supervisor.Id} still running after {timeout}:\n{Supervisor.Output}");
        }
    }

    public static void Kill(int pid, string signal)
    {
        using var kill = Process.Start("/bin/kill", ["-s", signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit(5_000);
    }

    /// <summary>Whether <paramref name="pid"/> is still running (a zombie waiting for its parent counts as gone).</summary>
    public static bool IsRunning(int pid) => State(pid) is not (null or 'Z' or 'X');

    /// <summary>The process's state letter from /proc (R, S, T when stopped, Z...); null once it is gone.</summary>
    public static char? State(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0];
        }
        catch (IOException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Workers of every supervisor, and the supervisors started by SIGUSR2 (same output, so their events are here too).
        var successors = EventsOf(LogEvents.UpgradeStarted).Select(e => e.Int("Pid"));
        foreach (var pid in Started.Select(s => s.Pid).Concat(successors).Where(IsRunning))
        {
            if (File.ReadAllText($"/proc/{pid}/cmdline").Contains("BenchmarkApp", StringComparison.Ordinal))
            {
                Kill(pid, "KILL");
            }
        }

        await Supervisor.DisposeAsync();
    }

    /// <summary>Structured logs, so tests read event ids and fields rather than message wording.</summary>
    private static Dictionary<string, string> JsonLogs(IDictionary<string, string>? environment) =>
        new(environment ?? new Dictionary<string, string>()) { ["Logging__Console__FormatterName"] = "json" };

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

    private static bool IsLibrary(LogEvent e) => e.Category.StartsWith("Kestrel.AcceptStrategies", StringComparison.Ordinal);

    private static long BudgetOf(string text) => text.StartsWith("request budget ", StringComparison.Ordinal) ? long.Parse(text[15..], CultureInfo.InvariantCulture) : 0;
}
