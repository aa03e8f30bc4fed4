using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

public sealed class SweepOptionsTests
{
    [Fact]
    public void Parse_NoArguments_GivesTheIssuesDefaults()
    {
        var options = SweepOptions.Parse([]);

        Assert.Equal([1, 2, 4, 8], options.Workers);
        Assert.Equal(Environment.ProcessorCount == 1 ? [1] : [1, Environment.ProcessorCount], options.Acceptors);
        Assert.Equal(["Serialized", "ThunderingHerd", "ReusePort"], options.Strategies);
        Assert.Equal(["ab-close", "ab-keepalive", "wrk-close", "wrk-keepalive"], options.Modes.Select(m => m.Name));
        Assert.Equal(3, options.Rounds);
        Assert.Null(options.App);
        Assert.Equal([0], options.MaxRequests);
        Assert.DoesNotContain(SweepRunner.Configurations(options), c => c.MaxRequests > 0);
    }

    [Fact]
    public void Parse_MaxRequests_AddsTwoWorkerPointsPerStrategyWithTheirUnlimitedReference()
    {
        var options = SweepOptions.Parse(["--workers", "1,4", "--acceptors", "1", "--strategies", "ReusePort,Serialized", "--max-requests", "10000,0,1000"]);

        Assert.Equal([0, 1000, 10000], options.MaxRequests);
        var labels = SweepRunner.Configurations(options).Select(c => c.Label).ToList();
        Assert.Equal(
            ["baseline", "ReusePort A1 W1", "ReusePort A1 W4", "Serialized A1 W1", "Serialized A1 W4",
             "ReusePort A1 W2", "ReusePort A1 W2 R1000", "ReusePort A1 W2 R10000",
             "Serialized A1 W2", "Serialized A1 W2 R1000", "Serialized A1 W2 R10000"],
            labels);
        var recycling = SweepRunner.Configurations(options).Single(c => c.Label == "Serialized A1 W2 R1000");
        Assert.Contains("--WorkerProcesses:MaxRequestsPerWorker=1000", recycling.Arguments);
        Assert.Equal(new ServerConfiguration("Serialized", 1, 2), recycling.Unlimited);
    }

    [Fact]
    public void Parse_App_TakesAnExistingDllOrExecutable_AndNamesAMissingOrPlainFile()
    {
        var plain = Path.GetTempFileName();
        try
        {
            Assert.Equal(ServerProcess.BenchmarkAppPath, SweepOptions.Parse(["--app", ServerProcess.BenchmarkAppPath]).App);
            Assert.Equal("/bin/true", SweepOptions.Parse(["--app", "/bin/true"]).App);

            var e = Assert.Throws<ArgumentException>(() => SweepOptions.Parse(["--app", "/nonexistent/BenchmarkApp", "--max-requests", "-5"]));
            Assert.Contains("--app '/nonexistent/BenchmarkApp': no such file", e.Message, StringComparison.Ordinal);
            Assert.Contains("--max-requests '-5' must be a whole number of at least 0", e.Message, StringComparison.Ordinal);

            e = Assert.Throws<ArgumentException>(() => SweepOptions.Parse(["--app", plain]));
            Assert.Contains("is neither a .dll nor executable", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(plain);
        }
    }

    [Fact]
    public void Parse_Quick_ShrinksOnlyWhatWasNotGiven()
    {
        var options = SweepOptions.Parse(["--quick", "--workers", "4,2"]);

        Assert.True(options.Quick);
        Assert.Equal([2, 4], options.Workers);
        Assert.Equal([1], options.Acceptors);
        Assert.Equal(1_000, options.AbRequests);
    }

    [Fact]
    public void Parse_SeveralBadArguments_ListsEveryProblem()
    {
        var e = Assert.Throws<ArgumentException>(() => SweepOptions.Parse(
            ["--workers", "1,x", "--strategies", "Fastest", "--rounds", "2", "--modes", "ab-close,h2load", "--bogus"]));

        Assert.Contains("--workers 'x'", e.Message, StringComparison.Ordinal);
        Assert.Contains("'Fastest' is not one of Serialized, ThunderingHerd, ReusePort", e.Message, StringComparison.Ordinal);
        Assert.Contains("--rounds '2' must be a whole number of at least 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("'h2load' is not one of", e.Message, StringComparison.Ordinal);
        Assert.Contains("Unknown option '--bogus'", e.Message, StringComparison.Ordinal);
    }
}
