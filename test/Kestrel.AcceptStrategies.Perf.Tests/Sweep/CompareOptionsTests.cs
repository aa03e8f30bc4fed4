using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

public sealed class CompareOptionsTests
{
    [Fact]
    public void Parse_Configurations_SplitsEnvironmentAppAndArguments()
    {
        var options = CompareOptions.Parse(
        [
            "--rounds", "4", "--tool", "ab", "-k", "--",
            "baseline=--Baseline=true",
            $"w4=DOTNET_gcServer=0 APP={ServerProcess.BenchmarkAppPath} --AcceptStrategy:Strategy=ReusePort  --WorkerProcesses:Workers=4",
            "plain=",
        ]);

        Assert.Equal(4, options.Rounds);
        Assert.Equal(LoadMode.AbKeepAlive, options.Mode);
        Assert.Equal(["baseline", "w4", "plain"], options.Configurations.Select(c => c.Label));

        var baseline = options.Configurations[0];
        Assert.Equal(["--Baseline=true"], baseline.Arguments);
        Assert.Empty(baseline.Environment);
        Assert.Null(baseline.App);
        Assert.Equal(0, baseline.Workers);
        Assert.Equal(1, baseline.ServingProcesses);

        var w4 = options.Configurations[1];
        Assert.Equal(new Dictionary<string, string> { ["DOTNET_gcServer"] = "0" }, w4.Environment);
        Assert.Equal(ServerProcess.BenchmarkAppPath, w4.App);
        Assert.Equal(["--AcceptStrategy:Strategy=ReusePort", "--WorkerProcesses:Workers=4"], w4.Arguments);
        Assert.Equal(4, w4.Workers);
        Assert.Equal(4, w4.ServingProcesses);

        Assert.Empty(options.Configurations[2].Arguments);
    }

    [Fact]
    public void Parse_WorkersKey_CountsTheWorkers()
    {
        var options = CompareOptions.Parse(["a=--WorkerProcesses:Workers=2", "b=--AcceptStrategy:Acceptors=2"]);

        Assert.Equal((2, 0), (options.Configurations[0].Workers, options.Configurations[1].Workers));
    }

    [Fact]
    public void Parse_NoOptions_MeasuresWrkConnectionPerRequestInFiveSecondRuns()
    {
        var options = CompareOptions.Parse(["a=--Baseline=true", "b="]);

        Assert.Equal(LoadMode.WrkClose, options.Mode);
        Assert.Equal(6, options.Rounds);
        Assert.Equal(5, options.WrkSeconds);
        Assert.Equal(40_000, options.Warmup);
        Assert.False(options.Syscalls);
        Assert.True(options.UseNetworkNamespace);
    }

    [Fact]
    public void Parse_SeveralProblems_ListsEveryOne()
    {
        var e = Assert.Throws<ArgumentException>(() => CompareOptions.Parse(
        [
            "--rounds", "2", "--tool", "siege", "--AcceptStrategy:Strategy=ReusePort", "nolabel",
            "a=APP=/nonexistent/BenchmarkApp", "b=APP=/bin/true APP=/bin/true", "a=--Baseline=true", "x|y=", "c=APP=",
        ]));

        Assert.Contains("--rounds '2' must be a whole number of at least 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("--tool 'siege' is not ab or wrk", e.Message, StringComparison.Ordinal);
        Assert.Contains("Unknown option '--AcceptStrategy:Strategy=ReusePort' (an app argument belongs inside a configuration", e.Message, StringComparison.Ordinal);
        Assert.Contains("'nolabel': a configuration is label=words", e.Message, StringComparison.Ordinal);
        Assert.Contains("a: APP= '/nonexistent/BenchmarkApp': no such file", e.Message, StringComparison.Ordinal);
        Assert.Contains("b: APP= is given more than once", e.Message, StringComparison.Ordinal);
        Assert.Contains("The label 'a' is used 2 times", e.Message, StringComparison.Ordinal);
        Assert.Contains("'x|y': a label cannot hold '|'", e.Message, StringComparison.Ordinal);
        Assert.Contains("c: APP= needs a path", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NoConfiguration_SaysToNameOne()
    {
        var e = Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--rounds", "3"]));

        Assert.Contains("Name at least one configuration", e.Message, StringComparison.Ordinal);
        Assert.True(CompareOptions.Parse(["--help"]).Help);
    }
}
