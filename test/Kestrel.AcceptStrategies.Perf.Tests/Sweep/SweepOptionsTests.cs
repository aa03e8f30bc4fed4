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
