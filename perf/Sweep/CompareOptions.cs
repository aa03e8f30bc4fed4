using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>The <c>compare</c> command's options and configurations; every problem is reported at once.</summary>
internal sealed class CompareOptions
{
    public IReadOnlyList<CompareConfiguration> Configurations { get; private set; } = [];

    public string Tool { get; private set; } = "wrk";

    public bool KeepAlive { get; private set; }

    public LoadMode Mode => LoadMode.All.Single(m => m.Tool == Tool && m.KeepAlive == KeepAlive);

    public int Rounds { get; private set; } = 6;

    public int Connections { get; private set; } = 30;

    public int AbRequests { get; private set; } = 50_000;

    public int WrkSeconds { get; private set; } = 5;

    /// <summary>Requests per serving process before measuring: tiered JIT reaches steady state after ~40k.</summary>
    public int Warmup { get; private set; } = 40_000;

    public bool Syscalls { get; private set; }

    public bool UseNetworkNamespace { get; private set; } = true;

    /// <summary>A file to write the Markdown report to as well as standard output; null = standard output only.</summary>
    public string? Output { get; private set; }

    public bool Help { get; private set; }

    public const string Usage = """
        Usage: dotnet run -c Release --project perf/Sweep -- compare [options] [--] LABEL=WORDS LABEL=WORDS ...

        Runs every configuration as its own server at once, warms each, then loads them in interleaved rounds (order
        reversed every other round: A B B A) and prints a Markdown table: median req/s (min–max), the median of the
        per-round ratios to the first configuration, failed requests, server CPU ms per 1,000 requests, context
        switches per request, optionally system calls per request, and PSS per process after the last round.

        WORDS: NAME=value sets an environment variable, APP=PATH runs another app (a .dll with dotnet, or an
        executable such as a Native AOT publish; default the JIT BenchmarkApp beside the sweep), anything else is an
        argument of the app. Example:
          compare 'baseline=--Baseline=true' 'reuseport=--AcceptStrategy:Strategy=ReusePort'

          --tool ab|wrk       load generator (default wrk, -t1)
          -k, --keepalive     keep connections alive (default: one connection per request)
          --rounds N          measured rounds, at least 3 (default 6), after one unrecorded pass
          --connections N     concurrent connections (default 30)
          --requests N        requests per ab run (default 50000)
          --duration S        seconds per wrk run (default 5)
          --warmup N          requests per serving process before measuring (default 40000)
          --syscalls          count system calls per request (perf stat -e raw_syscalls:sys_enter; needs perf)
          --no-netns          do not use a private network namespace (it needs root and iproute2)
          --out FILE          also write the Markdown report to FILE
          --help              this text
        """;

    public static CompareOptions Parse(IReadOnlyList<string> args)
    {
        var options = new CompareOptions();
        var errors = new List<string>();
        var configurations = new List<CompareConfiguration>();
        var onlyConfigurations = false;

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

            if (onlyConfigurations || !name.StartsWith('-'))
            {
                if (CompareConfiguration.Parse(name, errors) is { } configuration)
                {
                    configurations.Add(configuration);
                }

                continue;
            }

            switch (name)
            {
                case "--":
                    onlyConfigurations = true;
                    break;
                case "--tool":
                    var tool = Value();
                    if (tool is "ab" or "wrk")
                    {
                        options.Tool = tool;
                    }
                    else
                    {
                        errors.Add($"--tool '{tool}' is not ab or wrk.");
                    }

                    break;
                case "-k" or "--keepalive": options.KeepAlive = true; break;
                case "--rounds": options.Rounds = Number(name, Value(), min: 3, errors); break;
                case "--connections" or "-c": options.Connections = Number(name, Value(), min: 1, errors); break;
                case "--requests" or "-n": options.AbRequests = Number(name, Value(), min: 100, errors); break;
                case "--duration": options.WrkSeconds = Number(name, Value(), min: 1, errors); break;
                case "--warmup": options.Warmup = Number(name, Value(), min: 0, errors); break;
                case "--syscalls": options.Syscalls = true; break;
                case "--no-netns": options.UseNetworkNamespace = false; break;
                case "--out": options.Output = Value(); break;
                case "--help" or "-h": options.Help = true; break;
                default:
                    errors.Add($"Unknown option '{name}'{(name.Contains('=', StringComparison.Ordinal) ? " (an app argument belongs inside a configuration: 'label=" + name + "')" : "")}.");
                    break;
            }
        }

        options.Configurations = configurations;
        if (configurations.Count == 0 && !options.Help)
        {
            errors.Add("Name at least one configuration (label=words); the first is what the others are compared with.");
        }

        foreach (var duplicate in configurations.GroupBy(c => c.Label, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            errors.Add($"The label '{duplicate.Key}' is used {duplicate.Count()} times; each row needs its own.");
        }

        if (configurations.Count > 16)
        {
            errors.Add($"{configurations.Count} configurations: at most 16 run at once.");
        }

        if (options.Connections > 1000)
        {
            errors.Add($"--connections {options.Connections} is more than 1000; a loopback comparison on one machine does not need that.");
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors));
        }

        return options;
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
}
