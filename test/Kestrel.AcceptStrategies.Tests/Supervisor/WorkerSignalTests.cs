using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>Signals a terminal sends to the whole process group are the supervisor's, from a worker's first instant.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed partial class WorkerSignalTests
{
    private const int SIGHUP = 1;
    private const int SIGTTIN = 21;
    private const int SIGTTOU = 22;

    [Fact]
    public async Task TerminalSignals_FromEachWorkersFirstMoment_NoWorkerDiesOrStopsAndChildrenStartClean()
    {
        // The supervisor (and so the test run) is in the same process group as its workers, so the workers are
        // signalled one by one, from the moment the supervisor logs their pid, as a group signal would reach them.
        var supervisor = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=2 --WorkerProcesses:HangTimeout=00:00:05 --ChildFdProbe=true " +
            "--Logging:LogLevel:Kestrel.AcceptStrategies.Supervisor=Debug"); // "started in slot" (event 11) is Debug
        await using var owned = supervisor;
        await supervisor.WaitForListeningAsync();
        using var done = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var signalled = new Dictionary<int, int>();
        var hammer = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                foreach (var pid in StartedPids(supervisor.Output))
                {
                    signalled[pid] = signalled.GetValueOrDefault(pid) + 1;
                    foreach (var signal in new[] { SIGHUP, SIGTTIN, SIGTTOU })
                    {
                        _ = Kill(pid, signal);
                    }
                }

                await Task.Delay(1);
            }
        });

        try
        {
            // Two generations started under fire: the first set, then a reload's.
            await supervisor.WaitForLineAsync(_ => CountReady(supervisor.Output) >= 2, TestServer.Timeout);
            WorkerGroup.Kill(supervisor.Id, "HUP");
            await supervisor.WaitForLineAsync(_ => CountReady(supervisor.Output) >= 4 && CountLines(supervisor.Output, "exited: reload") >= 2, TestServer.Timeout);
            await supervisor.WaitForLineAsync(_ => CountLines(supervisor.Output, "children checked") >= 8, TestServer.Timeout);
        }
        finally
        {
            await done.CancelAsync();
            await hammer;
        }

        var output = supervisor.Output;
        Assert.DoesNotContain("killed by signal", output, StringComparison.Ordinal);
        Assert.DoesNotContain("failed_to_start", output, StringComparison.Ordinal);
        Assert.DoesNotContain("hung", output, StringComparison.Ordinal);
        Assert.DoesNotContain("fd-probe: terminal signals", output, StringComparison.Ordinal);
        Assert.True(signalled.Count >= 4 && signalled.Values.All(n => n > 10), $"signalled: {string.Join(", ", signalled)}");
    }

    private static List<int> StartedPids(string output) =>
        StartedRegex().Matches(output).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Distinct().ToList();

    private static int CountReady(string output) => ReadyRegex().Count(output);

    private static int CountLines(string output, string text) => output.Split('\n').Count(l => l.Contains(text, StringComparison.Ordinal));

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"Worker (\d+) started in slot")]
    private static partial Regex StartedRegex();

    [GeneratedRegex(@"Worker \d+ \(slot \d+, generation \d+\) is ready")]
    private static partial Regex ReadyRegex();
}
