using System.Text.RegularExpressions;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace Kestrel.AcceptStrategies.Perf.Tests;

/// <summary>
/// crank cannot run here, so perf/crank/acceptstrategies.benchmarks.yml is checked by parsing it, and BenchmarkApp is
/// started with every scenario's arguments (on 127.0.0.1, port 0), since it refuses any key it does not know.
/// </summary>
public sealed partial class CrankScenarioTests
{
    private static readonly string s_repository = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(ChildProcess.BenchmarkAppPath)!, "../../../../.."));
    private static readonly YamlMappingNode s_root = Load();
    private static readonly string[] s_strategies = ["baseline", "Serialized", "ThunderingHerd", "ReusePort"];
    private static readonly bool[] s_close = [false, true];
    private static readonly string[] s_loads = ["bombardier", "wrk"];

    [Fact]
    public void Config_ImportsTheStandardLoadJobs_AndBuildsBenchmarkAppFromTheRepository()
    {
        var imports = ((YamlSequenceNode)s_root["imports"]).Select(n => n.ToString()).ToList();
        Assert.Contains("https://raw.githubusercontent.com/dotnet/crank/main/src/Microsoft.Crank.Jobs.Bombardier/bombardier.yml", imports);
        Assert.Contains("https://raw.githubusercontent.com/dotnet/crank/main/src/Microsoft.Crank.Jobs.Wrk/wrk.yml", imports);

        var source = (YamlMappingNode)Job()["source"];
        var project = Path.Combine(s_repository, source["localFolder"].ToString(), source["project"].ToString());
        Assert.True(File.Exists(project), $"{project} does not exist");
        Assert.EndsWith("perf/BenchmarkApp/BenchmarkApp.csproj", project.Replace('\\', '/'), StringComparison.Ordinal);
        Assert.Equal("Application started.", Job()["readyStateText"].ToString());

        var local = (YamlMappingNode)((YamlMappingNode)s_root["profiles"])["local"];
        Assert.NotNull(local["jobs"]);
    }

    [Fact]
    public void Scenarios_EveryStrategyAndBaseline_KeepAliveAndClose_WithBombardierAndWrk()
    {
        var scenarios = Scenarios().ToList();
        var expected =
            from strategy in s_strategies
            from close in s_close
            from load in s_loads
            select (strategy, close, load);

        Assert.Equal(16, scenarios.Count);
        foreach (var (strategy, close, load) in expected)
        {
            Assert.Single(scenarios, s =>
                s.Load == load && s.Close == close &&
                (strategy == "baseline" ? s.Variables["baseline"] == "true" : s.Variables["strategy"] == strategy && s.Variables["baseline"] == "false"));
        }
    }

    public static TheoryData<string> DistinctArguments() => [.. Scenarios().Select(s => s.Arguments).Distinct()];

    [Theory]
    [MemberData(nameof(DistinctArguments))]
    public async Task BenchmarkApp_ScenarioArguments_AreAccepted(string arguments)
    {
        // Loopback only: the scenario's --urls (any address, crank's port) becomes 127.0.0.1:0 here.
        var local = UrlsRegex().Replace(arguments, "--urls http://127.0.0.1:0");
        Assert.NotEqual(arguments, local);

        await using var app = ChildProcess.StartBenchmarkApp(local);
        await app.WaitForListeningAsync();
        await app.WaitForLineAsync(l => l.Contains("Application started.", StringComparison.Ordinal), TestServer.Timeout);

        if (arguments.Contains("--Baseline=true", StringComparison.Ordinal))
        {
            Assert.DoesNotContain("Kestrel.AcceptStrategies", app.Output, StringComparison.Ordinal);
        }
        else
        {
            var strategy = StrategyRegex().Match(arguments).Groups[1].Value;
            Assert.Contains($"with {strategy}: 2 acceptor(s)", app.Output, StringComparison.Ordinal);
        }
    }

    private static YamlMappingNode Load()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(s_repository, "perf", "crank", "acceptstrategies.benchmarks.yml"));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlMappingNode Job() => (YamlMappingNode)((YamlMappingNode)s_root["jobs"])["acceptstrategies"];

    /// <summary>Each scenario with the application's variables (job defaults, then the scenario's) and rendered arguments.</summary>
    private static IEnumerable<(string Name, string Load, bool Close, IReadOnlyDictionary<string, string> Variables, string Arguments)> Scenarios()
    {
        var rootVariables = ((YamlMappingNode)s_root["variables"]).ToDictionary(p => p.Key.ToString(), p => p.Value.ToString());
        var jobVariables = ((YamlMappingNode)Job()["variables"]).ToDictionary(p => p.Key.ToString(), p => p.Value.ToString());
        foreach (var (name, node) in (YamlMappingNode)s_root["scenarios"])
        {
            var scenario = (YamlMappingNode)node;
            var application = (YamlMappingNode)scenario["application"];
            var load = (YamlMappingNode)scenario["load"];
            Assert.Equal("acceptstrategies", application["job"].ToString());

            var variables = new Dictionary<string, string>(rootVariables);
            foreach (var (key, value) in jobVariables)
            {
                variables[key] = value;
            }

            if (application.Children.TryGetValue("variables", out var own))
            {
                foreach (var (key, value) in (YamlMappingNode)own)
                {
                    variables[key.ToString()] = value.ToString();
                }
            }

            var close = load.Children.TryGetValue("variables", out var loadVariables) &&
                ((YamlMappingNode)loadVariables).Children.TryGetValue("presetHeaders", out var preset) && preset.ToString() == "connectionclose";
            var arguments = PlaceholderRegex().Replace(Job()["arguments"].ToString(), m =>
                variables.TryGetValue(m.Groups[1].Value, out var value) ? value : throw new InvalidOperationException($"No variable {m.Value} for {name}"));
            yield return (name.ToString(), load["job"].ToString(), close, variables, arguments);
        }
    }

    [GeneratedRegex(@"\{\{\s*(\w+)\s*\}\}")]
    private static partial Regex PlaceholderRegex();

    [GeneratedRegex(@"--urls \S+")]
    private static partial Regex UrlsRegex();

    [GeneratedRegex(@"--AcceptStrategy:Strategy=(\w+)")]
    private static partial Regex StrategyRegex();
}
