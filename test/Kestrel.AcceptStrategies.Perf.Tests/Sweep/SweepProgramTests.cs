using System.Diagnostics;
using System.Globalization;
using Kestrel.AcceptStrategies.Sweep;
using Kestrel.AcceptStrategies.Tests.Supervisor;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>The sweep end to end, small: real servers (one with a worker), real ab and wrk, real CSV, table and charts.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SweepProgramTests : IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("sweep-test-").FullName;

    [Fact]
    public async Task Main_SmallSweep_WritesCsvTableAndChartsForEveryPoint()
    {
        var (exitCode, stdout, stderr) = await RunSweepAsync(
            "--workers", "1", "--acceptors", "1", "--strategies", "ReusePort,Serialized", "--modes", "ab-close,wrk-keepalive",
            "--rounds", "3", "--requests", "300", "--duration", "1", "--warmup", "200", "--out", _output);

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stderr}\n{stdout}");
        var csv = File.ReadAllLines(Path.Combine(_output, "results.csv"));
        Assert.Equal("mode,configuration,strategy,acceptors,workers,rounds,rps_median,rps_min,rps_max,ratio_to_baseline,p50_ms,p99_ms,failed,cpu_s_per_1k,peak_rss_mib,jain_workers,jain_acceptors,max_requests,ratio_to_unlimited,errors", csv[0]);
        var rows = csv.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(2 * 3, rows.Count); // 2 modes × (baseline + 2 strategies); 24 runs with the settling pass
        foreach (var row in rows)
        {
            Assert.Equal("3", row[5]);
            Assert.True(double.Parse(row[6], CultureInfo.InvariantCulture) > 0, string.Join(',', row));
            Assert.Equal("0", row[12]);
            Assert.True(double.Parse(row[13], CultureInfo.InvariantCulture) > 0, "CPU per 1k requests");
            Assert.True(double.Parse(row[14], CultureInfo.InvariantCulture) > 20, "peak RSS MiB");
        }

        // A worker server's peak RSS holds supervisor and worker: more than the one-process baseline's.
        var baselineRss = double.Parse(rows.First(r => r[1] == "baseline")[14], CultureInfo.InvariantCulture);
        Assert.True(double.Parse(rows.First(r => r[1] == "ReusePort A1 W1")[14], CultureInfo.InvariantCulture) > baselineRss * 1.4);
        Assert.Equal("1.000", rows.First(r => r[1] == "baseline" && r[0] == "ab-close")[9]);

        var table = await File.ReadAllTextAsync(Path.Combine(_output, "results.md"));
        Assert.Contains("## ab-close (ab, one connection per request)", table, StringComparison.Ordinal);
        Assert.Contains("| Kernel |", table, StringComparison.Ordinal);
        Assert.Contains("| ReusePort A1 W1 |", table, StringComparison.Ordinal);

        foreach (var mode in new[] { "ab-close", "wrk-keepalive" })
        {
            var svg = await File.ReadAllTextAsync(Path.Combine(_output, $"chart-{mode}.svg"));
            Assert.Contains("<svg", svg, StringComparison.Ordinal);
            Assert.Contains("ReusePort A1", svg, StringComparison.Ordinal);
            Assert.Contains("Kestrel default transport", svg, StringComparison.Ordinal);
        }

        Assert.Contains("[24/24]", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Main_MaxRequestsWithApp_RecyclesWorkersAndReportsTheCostAgainstUnlimited()
    {
        // --app given explicitly (the same JIT build: an AOT publish is too slow to make in a test; eng/aot-check.sh
        // runs that). 600 requests a run over two workers with a budget of 300 each recycle every run.
        var (exitCode, stdout, stderr) = await RunSweepAsync(
            "--app", ServerProcess.BenchmarkAppPath, "--workers", "1", "--acceptors", "1", "--strategies", "ReusePort",
            "--modes", "ab-close", "--max-requests", "300", "--rounds", "3", "--requests", "600", "--warmup", "200", "--out", _output);

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stderr}\n{stdout}");
        var rows = File.ReadAllLines(Path.Combine(_output, "results.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["baseline", "ReusePort A1 W1", "ReusePort A1 W2", "ReusePort A1 W2 R300"], rows.Select(r => r[1]));
        Assert.All(rows, r => Assert.Equal("0", r[12]));
        var recycling = rows.Single(r => r[1] == "ReusePort A1 W2 R300");
        Assert.Equal("300", recycling[17]);
        Assert.True(double.Parse(recycling[18], CultureInfo.InvariantCulture) > 0, string.Join(',', recycling));
        Assert.Equal("0", rows.Single(r => r[1] == "ReusePort A1 W2")[17]);
        Assert.Equal("", rows.Single(r => r[1] == "ReusePort A1 W2")[18]);

        var table = await File.ReadAllTextAsync(Path.Combine(_output, "results.md"));
        Assert.Contains("## Recycling cost", table, StringComparison.Ordinal);
        Assert.Contains("| ab-close | ReusePort A1 | 2 | 300 |", table, StringComparison.Ordinal);
        Assert.Contains($"App: `{ServerProcess.BenchmarkAppPath}` (JIT, run with dotnet)", table, StringComparison.Ordinal);
        Assert.DoesNotContain("R300", await File.ReadAllTextAsync(Path.Combine(_output, "chart-ab-close.svg")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Main_BadOptions_ListsEveryProblemAndExits2()
    {
        var (exitCode, _, stderr) = await RunSweepAsync("--rounds", "1", "--modes", "siege");

        Assert.Equal(2, exitCode);
        Assert.Contains("--rounds '1'", stderr, StringComparison.Ordinal);
        Assert.Contains("'siege' is not one of", stderr, StringComparison.Ordinal);
        Assert.Contains("Usage:", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compare_TwoConfigurations_PrintsOneRowEachWithCostsAndMemory()
    {
        var report = Path.Combine(_output, "compare.md");
        var (exitCode, stdout, stderr) = await RunSweepAsync(
            "compare", "--rounds", "3", "--duration", "1", "--warmup", "300", "--out", report, "--",
            "baseline=--Baseline=true", "reuseport=DOTNET_gcServer=0 --AcceptStrategy:Strategy=ReusePort --AcceptStrategy:Acceptors=1");

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stderr}\n{stdout}");
        Assert.Equal(await File.ReadAllTextAsync(report), stdout.TrimEnd() + "\n");
        Assert.Contains("`wrk -t1 -c30 -d1s -H 'Connection: close'`, one connection per request; 3 rounds", stdout, StringComparison.Ordinal);
        Assert.Contains("compare --rounds 3 --duration 1 --warmup 300 --out ", stdout, StringComparison.Ordinal);
        Assert.Contains("'reuseport=DOTNET_gcServer=0 --AcceptStrategy:Strategy=ReusePort --AcceptStrategy:Acceptors=1'", stdout, StringComparison.Ordinal);
        foreach (var label in new[] { "baseline", "reuseport" })
        {
            var cells = stdout.Split('\n').Single(l => l.StartsWith($"| {label} |", StringComparison.Ordinal))
                .Split('|', StringSplitOptions.TrimEntries)[1..^1];
            Assert.True(double.Parse(cells[1], CultureInfo.InvariantCulture) > 0, string.Join(" | ", cells)); // req/s
            Assert.Equal("0", cells[4]); // failed
            Assert.True(double.Parse(cells[5], CultureInfo.InvariantCulture) > 0, "CPU ms per 1,000 requests");
            Assert.True(double.Parse(cells[7], CultureInfo.InvariantCulture) > 0, "context switches per request");
            Assert.Equal("1", cells[8]); // processes
            Assert.True(double.Parse(cells[9], CultureInfo.InvariantCulture) > 10, "PSS MiB");
        }

        Assert.Contains("| baseline | ", stdout, StringComparison.Ordinal);
        Assert.Contains("round 3:", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compare_BadConfigurations_ListsEveryProblemAndExits2()
    {
        var (exitCode, _, stderr) = await RunSweepAsync("compare", "--rounds", "1", "a=APP=/nonexistent/BenchmarkApp");

        Assert.Equal(2, exitCode);
        Assert.Contains("--rounds '1'", stderr, StringComparison.Ordinal);
        Assert.Contains("a: APP= '/nonexistent/BenchmarkApp': no such file", stderr, StringComparison.Ordinal);
        Assert.Contains("Usage: dotnet run -c Release --project perf/Sweep -- compare", stderr, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_output, recursive: true);

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunSweepAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sweep.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The sweep did not finish in 3 minutes:\n{await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
