using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// <c>compare</c>: a few named configurations side by side (strategies against Kestrel's default transport, one
/// build against another, an environment variable on and off), with the per-request costs the sweep does not give.
/// </summary>
internal static class CompareCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        CompareOptions options;
        try
        {
            options = CompareOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message + Environment.NewLine + Environment.NewLine + CompareOptions.Usage);
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(CompareOptions.Usage);
            return 0;
        }

        if (options.Configurations.Any(c => c.App is null) && !File.Exists(ServerProcess.BenchmarkAppPath))
        {
            await Console.Error.WriteLineAsync($"BenchmarkApp is not built at {ServerProcess.BenchmarkAppPath}; run with `dotnet run -c Release --project perf/Sweep -- compare ...`.");
            return 2;
        }

        if (MachineInfo.FirstLine(options.Tool, options.Tool == "ab" ? "-V" : "-v") is null)
        {
            await Console.Error.WriteLineAsync($"{options.Tool} is not installed: sudo apt-get install {options.Mode.DebianPackage}");
            return 3;
        }

        if (options.Syscalls && MachineInfo.FirstLine("perf", "--version") is null)
        {
            await Console.Error.WriteLineAsync("--syscalls needs perf (Debian package linux-perf).");
            return 3;
        }

        var progress = new Progress(Console.Error, !Console.IsErrorRedirected);
        var notes = new List<string>();
        using var session = new HarnessSession(options.UseNetworkNamespace, notes, progress);
        var ns = session.Namespace;

        var loadBefore = LoadAverage();
        IReadOnlyList<CompareRun> runs;
        IReadOnlyList<ServerMemory> memory;
        try
        {
            (runs, memory) = await new CompareRunner(options, ns, progress).RunAsync(session.Cancellation);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync(Environment.NewLine + "Cancelled; every server was stopped.");
            return 130;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            await Console.Error.WriteLineAsync(Environment.NewLine + e.Message + Environment.NewLine + "Every server was stopped.");
            return 1;
        }

        var rows = CompareRow.Summarize(options.Configurations.Select(c => c.Label).ToList(), runs, memory);
        var machine = MachineInfo.Collect().ToDictionary(m => m.Name, m => m.Value);
        var setting = string.Create(CultureInfo.InvariantCulture,
            $"{(ns is null ? "host network namespace" : "private network namespace")}; {DateTime.UtcNow:yyyy-MM-dd}, {machine["CPU"]}, " +
            $"{Environment.ProcessorCount} cores, Linux {machine["Kernel"]}, {machine[".NET runtime"]}, {CompareReport.ToolVersion(options.Tool, machine[options.Tool])}; " +
            $"load average (1 min) {loadBefore} before, {LoadAverage()} after");
        var command = "dotnet run -c Release --project perf/Sweep -- compare " + string.Join(' ', args.Select(CompareReport.ShellQuote));
        var markdown = CompareReport.Format(options, rows, command, setting, notes);
        if (options.Output is not null)
        {
            await File.WriteAllTextAsync(options.Output, markdown);
        }

        Console.WriteLine(markdown);
        return 0;
    }

    /// <summary>The 1-minute load average: how busy the machine was besides (and including) this comparison.</summary>
    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
