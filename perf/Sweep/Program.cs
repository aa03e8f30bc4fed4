using System.Globalization;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Sweep;

// The seed's experiment in one command: requests/sec against worker processes for every accept strategy, beside
// Kestrel's default transport, under ab and wrk, with and without keep-alive; `compare` measures a few named
// configurations side by side. See perf/README.md.
if (args.Length > 0 && args[0] == "compare")
{
    if (!OperatingSystem.IsLinux())
    {
        Console.Error.WriteLine($"compare measures Linux servers; this is {RuntimeInformation.OSDescription}.");
        return 2;
    }

    return await CompareCommand.RunAsync(args[1..]);
}

SweepOptions options;
try
{
    options = SweepOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine();
    Console.Error.WriteLine(SweepOptions.Usage);
    return 2;
}

if (options.Help)
{
    Console.WriteLine(SweepOptions.Usage);
    return 0;
}

if (!OperatingSystem.IsLinux())
{
    Console.Error.WriteLine($"The sweep measures Linux accept strategies; this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}.");
    return 2;
}

if (options.App is null && !File.Exists(ServerProcess.BenchmarkAppPath))
{
    Console.Error.WriteLine($"BenchmarkApp is not built at {ServerProcess.BenchmarkAppPath}; run the sweep with `dotnet run -c Release --project perf/Sweep`.");
    return 2;
}

var progress = new Progress(Console.Error, !Console.IsErrorRedirected);
var notes = new List<string>();

// Run what the installed tools allow; name the Debian package of each missing one.
var missing = options.Modes.Select(m => m.Tool).Distinct()
    .Where(tool => MachineInfo.FirstLine(tool, tool == "ab" ? "-V" : "-v") is null).ToHashSet();
foreach (var tool in missing)
{
    var package = options.Modes.First(m => m.Tool == tool).DebianPackage;
    var skipped = string.Join(", ", options.Modes.Where(m => m.Tool == tool));
    notes.Add($"{tool} is not installed (Debian package {package}: sudo apt-get install {package}); skipped {skipped}.");
    progress.Note(notes[^1]);
}

var modes = options.Modes.Where(m => !missing.Contains(m.Tool)).ToList();
if (modes.Count == 0)
{
    Console.Error.WriteLine("No load generator is installed: sudo apt-get install apache2-utils wrk");
    return 3;
}

using var session = new HarnessSession(options.UseNetworkNamespace, notes, progress);
var ns = session.Namespace;

var configurations = SweepRunner.Configurations(options);
progress.Note(string.Create(CultureInfo.InvariantCulture,
    $"{configurations.Count} servers × {modes.Count} load modes × {options.Rounds} rounds; results in {Path.GetFullPath(options.Output)}"));

IReadOnlyList<Measurement> measurements;
try
{
    measurements = await new SweepRunner(options, modes, ns, progress).RunAsync(session.Cancellation);
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine();
    Console.Error.WriteLine("Cancelled; every server was stopped.");
    return 130;
}

var points = (
    from mode in modes
    from configuration in configurations
    let runs = measurements.Where(m => m.Mode == mode && m.Configuration == configuration).ToList()
    let baselineRuns = measurements.Where(m => m.Mode == mode && m.Configuration.IsBaseline).ToList()
    let unlimitedRuns = configuration.MaxRequests > 0
        ? measurements.Where(m => m.Mode == mode && m.Configuration == configuration.Unlimited).ToList()
        : null
    select PointSummary.From(runs, baselineRuns, unlimitedRuns)).ToList();
notes.AddRange(points.SelectMany(p => p.Errors));

var command = "dotnet run -c Release --project perf/Sweep --" + (args.Length == 0 ? "" : " " + string.Join(' ', args));
var machine = MachineInfo.Collect();
Directory.CreateDirectory(options.Output);
await File.WriteAllTextAsync(Path.Combine(options.Output, "results.csv"), CsvReport.Format(points));
await File.WriteAllTextAsync(Path.Combine(options.Output, "runs.csv"), CsvReport.FormatRuns(measurements));
var markdown = MarkdownReport.Format(points, options, command, machine, ns is not null, notes);
await File.WriteAllTextAsync(Path.Combine(options.Output, "results.md"), markdown);
var subtitle = $"{machine.First(m => m.Name == "CPU").Value}, {Environment.ProcessorCount} cores, Linux {machine.First(m => m.Name == "Kernel").Value}; median of {options.Rounds} rounds";
foreach (var mode in modes)
{
    // Workers are the charts' x axis; the recycling points (Workers=2 only) are in results.md's own table.
    await File.WriteAllTextAsync(
        Path.Combine(options.Output, $"chart-{mode.Name}.svg"), ChartRenderer.Svg(points.Where(p => p.Configuration.MaxRequests == 0).ToList(), mode, subtitle));
}

Console.WriteLine(markdown);
Console.Error.WriteLine($"Wrote results.csv, runs.csv, results.md and {modes.Count} chart(s) to {Path.GetFullPath(options.Output)}");
return points.Any(p => p.Errors.Count > 0) ? 1 : 0;
