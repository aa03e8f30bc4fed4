using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>compare's arithmetic (medians, per-round ratios, per-request costs) and its Markdown.</summary>
public sealed class CompareReportTests
{
    private static readonly string[] s_labels = ["baseline", "reuseport"];

    // Rounds 1–3; baseline at 10,000, 20,000, 12,000 req/s, reuseport 1.5×, 1.1×, 1.3× of it in the same round.
    private static readonly CompareRun[] s_runs =
    [
        Run(1, 0, rps: 10_000, completed: 50_000, cpu: 4.0, switches: 200_000, syscalls: 1_000_000, failed: 0),
        Run(1, 1, rps: 15_000, completed: 75_000, cpu: 3.0, switches: 75_000, syscalls: 750_000, failed: 2),
        Run(2, 1, rps: 22_000, completed: 110_000, cpu: 5.5, switches: 110_000, syscalls: 1_100_000, failed: 0),
        Run(2, 0, rps: 20_000, completed: 100_000, cpu: 7.0, switches: 400_000, syscalls: 2_000_000, failed: 0),
        Run(3, 0, rps: 12_000, completed: 60_000, cpu: 4.8, switches: 240_000, syscalls: 1_200_000, failed: 1),
        Run(3, 1, rps: 15_600, completed: 78_000, cpu: 3.9, switches: 78_000, syscalls: 780_000, failed: 0),
    ];

    private static CompareRun Run(int round, int configuration, double rps, long completed, double cpu, long switches, long? syscalls, long failed) =>
        new(round, configuration, new LoadResult(completed, failed, rps, 1, 2), cpu, switches, syscalls);

    [Fact]
    public void Summarize_TakesMediansAndTheMedianOfPerRoundRatios()
    {
        var memory = new[] { new ServerMemory([40_960]), new ServerMemory([20_480, 30_720, 51_200, 40_960]) };

        var rows = CompareRow.Summarize(s_labels, s_runs, memory);

        var baseline = rows[0];
        Assert.Equal(3, baseline.Rounds);
        Assert.Equal(12_000, baseline.RequestsPerSecond);
        Assert.Equal((10_000, 20_000), (baseline.MinRequestsPerSecond, baseline.MaxRequestsPerSecond));
        Assert.Equal(1.0, baseline.RatioToFirst);
        Assert.Equal(1, baseline.Failed);
        Assert.Equal(80, baseline.CpuMillisecondsPer1000, 9); // 4.0 s / 50,000 = 80 ms per 1,000; 70 and 80 in the other rounds
        Assert.Equal(4.0, baseline.SwitchesPerRequest, 9);
        Assert.Equal(20.0, baseline.SyscallsPerRequest!.Value, 9);

        var reusePort = rows[1];
        // Per round 1.5, 1.1, 1.3: the median is 1.3, not 15,600 / 12,000 of the medians.
        Assert.Equal(1.3, reusePort.RatioToFirst, 9);
        Assert.Equal(15_600, reusePort.RequestsPerSecond);
        Assert.Equal(2, reusePort.Failed);
        Assert.Equal(50, reusePort.CpuMillisecondsPer1000, 9); // 40, 50, 50
        Assert.Equal(0.625, reusePort.CpuRatioToFirst, 9); // 40/80, 50/70, 50/80
        Assert.Equal(1.0, reusePort.SwitchesPerRequest, 9);
        Assert.Equal(10.0, reusePort.SyscallsPerRequest!.Value, 9);

        Assert.Equal(40_960.0, rows[0].Memory!.ServingKiB);
        Assert.Equal((4, 143_360L, 40_960.0), (reusePort.Memory!.Processes, reusePort.Memory.TotalKiB, reusePort.Memory.ServingKiB));
    }

    [Fact]
    public void Format_GivesTheCommandTheSettingAndOneRowPerConfiguration()
    {
        var options = CompareOptions.Parse(["--rounds", "3", "--syscalls", "--duration", "5", "baseline=--Baseline=true", "reuseport="]);
        var rows = CompareRow.Summarize(s_labels, s_runs, [new ServerMemory([40_960]), new ServerMemory([20_480, 30_720])]);

        var md = CompareReport.Format(options, rows, "dotnet run ... compare", "private network namespace", ["a note"]);

        var lines = md.Split('\n');
        Assert.Equal("`dotnet run ... compare`", lines[0]);
        Assert.StartsWith("`wrk -t1 -c30 -d5s -H 'Connection: close'`, one connection per request; 3 rounds after 40,000 warm-up requests", lines[2], StringComparison.Ordinal);
        Assert.EndsWith("private network namespace.", lines[2], StringComparison.Ordinal);
        Assert.Equal(
            "| configuration | req/s | min–max | vs first | failed | CPU ms / 1k req | CPU vs first | context switches / req | system calls / req | processes | PSS MiB | PSS MiB per serving process |",
            lines[4]);
        Assert.Equal("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", lines[5]);
        Assert.Equal("| baseline | 12000 | 10000–20000 | 1.00 | 1 | 80.0 | 1.00 | 4.00 | 20.0 | 1 | 40.0 | 40.0 |", lines[6]);
        Assert.Equal("| reuseport | 15600 | 15000–22000 | 1.30 | 2 | 50.0 | 0.63 | 1.00 | 10.0 | 2 | 50.0 | 30.0 |", lines[7]);
        Assert.Contains("\n- a note\n", md, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_WithoutSyscallsOrMemory_LeavesTheirColumnsOut()
    {
        var options = CompareOptions.Parse(["--tool", "ab", "-n", "20000", "-k", "a=", "b="]);
        var runs = s_runs.Select(r => r with { Syscalls = null }).ToList();

        var md = CompareReport.Format(options, CompareRow.Summarize(s_labels, runs), "c", "s", []);

        Assert.Contains("`ab -c 30 -n 20000 -k`, keep-alive;", md, StringComparison.Ordinal);
        Assert.Contains("| configuration | req/s | min–max | vs first | failed | CPU ms / 1k req | CPU vs first | context switches / req |\n", md, StringComparison.Ordinal);
        Assert.DoesNotContain("PSS", md, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--rounds", "--rounds")]
    [InlineData("baseline=--Baseline=true", "baseline=--Baseline=true")]
    [InlineData("w2=DOTNET_gcServer=0 --WorkerProcesses:Workers=2", "'w2=DOTNET_gcServer=0 --WorkerProcesses:Workers=2'")]
    [InlineData("it's", "'it'\\''s'")]
    [InlineData("", "''")]
    public void ShellQuote_QuotesOnlyWhatAShellWouldSplitOrExpand(string argument, string quoted) =>
        Assert.Equal(quoted, CompareReport.ShellQuote(argument));

    [Fact]
    public void ToolVersion_KeepsTheVersionNumber()
    {
        Assert.Equal("wrk 4.1.0", CompareReport.ToolVersion("wrk", "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"));
        Assert.Equal("ab 2.3", CompareReport.ToolVersion("ab", "This is ApacheBench, Version 2.3 <$Revision: 1923142 $>"));
    }
}
