using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>What to sweep and how hard, from the command line; every problem is reported at once.</summary>
internal sealed class SweepOptions
{
    public static readonly string[] AllStrategies = ["Serialized", "ThunderingHerd", "ReusePort"];

    public IReadOnlyList<int> Workers { get; private set; } = [1, 2, 4, 8];

    public IReadOnlyList<int> Acceptors { get; private set; } = Environment.ProcessorCount == 1 ? [1] : [1, Environment.ProcessorCount];

    public IReadOnlyList<string> Strategies { get; private set; } = AllStrategies;

    public IReadOnlyList<LoadMode> Modes { get; private set; } = LoadMode.All;

    public int Rounds { get; private set; } = 3;

    public int Connections { get; private set; } = 30;

    public int AbRequests { get; private set; } = 20_000;

    public int WrkSeconds { get; private set; } = 3;

    /// <summary>Requests per serving process before measuring: tiered JIT reaches steady state after ~40k.</summary>
    public int Warmup { get; private set; } = 40_000;

    public string Output { get; private set; } = Path.Combine("sweep-results", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));

    /// <summary>The app to run: a .dll (through dotnet) or an executable (a Native AOT publish); null = the JIT build.</summary>
    public string? App { get; private set; }

    /// <summary>Request budgets per worker; each above 0 adds Workers=2 points per strategy (0 = unlimited).</summary>
    public IReadOnlyList<int> MaxRequests { get; private set; } = [0];

    public bool UseNetworkNamespace { get; private set; } = true;

    public bool Quick { get; private set; }

    public bool Help { get; private set; }

    public const string Usage = """
        Usage: dotnet run -c Release --project perf/Sweep -- [options]
               dotnet run -c Release --project perf/Sweep -- compare --help   (a few named configurations side by side)

        Sweeps Kestrel's default transport and every strategy × acceptors × workers, interleaved, and writes
        results.csv, results.md, one chart per load mode (SVG) and machine.md into the output directory.

          --workers LIST      worker processes per server (default 1,2,4,8)
          --acceptors LIST    acceptors per process (default 1,<cores>)
          --strategies LIST   Serialized,ThunderingHerd,ReusePort (default all)
          --modes LIST        ab-close,ab-keepalive,wrk-close,wrk-keepalive (default all)
          --rounds N          rounds per point, median reported (default 3, at least 3)
          --connections N     concurrent connections of ab and wrk (default 30)
          --requests N        requests per ab run (default 20000)
          --duration S        seconds per wrk run (default 3)
          --warmup N          requests per serving process before measuring (default 40000)
          --out DIR           output directory (default sweep-results/<date-time>)
          --app PATH          BenchmarkApp to run: a .dll (run with dotnet) or an executable such as a Native AOT
                              publish (default the JIT build beside the sweep)
          --max-requests LIST request budgets per worker (default 0 = unlimited); each budget above 0 adds a
                              Workers=2 point per strategy, reported against the same strategy's unlimited point
          --no-netns          do not use a private network namespace (it needs root and iproute2)
          --quick             smoke check under 2 minutes: workers 1,2, acceptors 1, small counts
          --help              this text
        """;

    public static SweepOptions Parse(IReadOnlyList<string> args)
    {
        var options = new SweepOptions();
        var errors = new List<string>();
        var explicitlySet = new HashSet<string>(StringComparer.Ordinal);

        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value()
            {
                if (i + 1 < args.Count)
                {
                    return args[++i];
                }

                errors.Add($"{name} needs a value.");
                return "";
            }

            explicitlySet.Add(name);
            switch (name)
            {
                case "--workers": options.Workers = Numbers(name, Value(), min: 0, errors); break;
                case "--acceptors": options.Acceptors = Numbers(name, Value(), min: 1, errors); break;
                case "--strategies": options.Strategies = Names(name, Value(), AllStrategies, errors); break;
                case "--modes":
                    options.Modes = Names(name, Value(), LoadMode.All.Select(m => m.Name).ToArray(), errors)
                        .Select(n => LoadMode.All.Single(m => m.Name == n)).ToList();
                    break;
                case "--rounds": options.Rounds = Number(name, Value(), min: 3, errors); break;
                case "--connections": options.Connections = Number(name, Value(), min: 1, errors); break;
                case "--requests": options.AbRequests = Number(name, Value(), min: 100, errors); break;
                case "--duration": options.WrkSeconds = Number(name, Value(), min: 1, errors); break;
                case "--warmup": options.Warmup = Number(name, Value(), min: 0, errors); break;
                case "--out": options.Output = Value(); break;
                case "--app": options.App = AppPath(name, Value(), errors); break;
                case "--max-requests": options.MaxRequests = Numbers(name, Value(), min: 0, errors); break;
                case "--no-netns": options.UseNetworkNamespace = false; break;
                case "--quick": options.Quick = true; break;
                case "--help" or "-h": options.Help = true; break;
                default: errors.Add($"Unknown option '{name}'."); break;
            }
        }

        if (options.Quick)
        {
            // Small enough for a smoke check; anything given explicitly still wins.
            if (!explicitlySet.Contains("--workers")) options.Workers = [1, 2];
            if (!explicitlySet.Contains("--acceptors")) options.Acceptors = [1];
            if (!explicitlySet.Contains("--requests")) options.AbRequests = 1_000;
            if (!explicitlySet.Contains("--duration")) options.WrkSeconds = 1;
            if (!explicitlySet.Contains("--warmup")) options.Warmup = 2_000;
        }

        if (options.Connections > 1000)
        {
            errors.Add($"--connections {options.Connections} is more than 1000; a loopback sweep on one machine does not need that.");
        }

        if (options.Workers.Any(w => w > 64))
        {
            errors.Add("--workers above 64 would start more processes than this sweep is meant for.");
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors));
        }

        return options;
    }

    internal static string AppPath(string name, string path, List<string> errors)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            errors.Add($"{name} '{path}': no such file.");
        }
        else if (!full.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            && !OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            errors.Add($"{name} '{path}' is neither a .dll nor executable.");
        }

        return full;
    }

    private static int Number(string name, string text, int min, List<string> errors)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min)
        {
            return value;
        }

        errors.Add($"{name} '{text}' must be a whole number of at least {min}.");
        return min;
    }

    private static List<int> Numbers(string name, string text, int min, List<string> errors)
    {
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => Number(name, part, min, errors)).Distinct().Order().ToList();
        if (values.Count == 0)
        {
            errors.Add($"{name} needs at least one value.");
        }

        return values;
    }

    private static List<string> Names(string name, string text, string[] known, List<string> errors)
    {
        var values = new List<string>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var match = known.FirstOrDefault(k => string.Equals(k, part, StringComparison.OrdinalIgnoreCase));
            if (match is null)
            {
                errors.Add($"{name}: '{part}' is not one of {string.Join(", ", known)}.");
            }
            else if (!values.Contains(match))
            {
                values.Add(match);
            }
        }

        if (values.Count == 0)
        {
            errors.Add($"{name} needs at least one value.");
        }

        return values;
    }
}
