using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>MaxWorkers, MinSpareWorkers and MaxSpareWorkers: defaults, and bad values reported with every other error.</summary>
[Collection(WorkerProcesses.Name)]
public sealed class PoolOptionsTests
{
    [Fact]
    public void Defaults_PoolOff_OneToTwoSpare_Valid()
    {
        var options = new AcceptStrategyOptions { Workers = 2 };

        Assert.Equal((0, 1, 2), (options.MaxWorkers, options.MinSpareWorkers, options.MaxSpareWorkers));
        Assert.True(new AcceptStrategyOptionsValidator().Validate(null, options).Succeeded);
    }

    [Theory]
    [InlineData(2, 1, 1, 2, "AcceptStrategy:MaxWorkers = 1 is below Workers = 2, the number started")]
    [InlineData(0, 4, 1, 2, "AcceptStrategy:MaxWorkers = 4 needs worker mode: with Workers = 0 the app is one process")]
    [InlineData(1, -1, 1, 2, "AcceptStrategy:MaxWorkers = -1 is out of range")]
    [InlineData(1, 4, -1, 2, "AcceptStrategy:MinSpareWorkers = -1 is negative")]
    [InlineData(1, 4, 1, -2, "AcceptStrategy:MaxSpareWorkers = -2 is negative")]
    [InlineData(1, 4, 3, 2, "AcceptStrategy:MinSpareWorkers = 3 is above MaxSpareWorkers = 2")]
    public void Validate_OneBadValue_OneFailure(int workers, int maxWorkers, int minSpare, int maxSpare, string expected)
    {
        var options = new AcceptStrategyOptions
        {
            Strategy = AcceptStrategy.Serialized,
            Workers = workers,
            MaxWorkers = maxWorkers,
            MinSpareWorkers = minSpare,
            MaxSpareWorkers = maxSpare,
        };

        var result = new AcceptStrategyOptionsValidator().Validate(null, options);

        Assert.StartsWith(expected, Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ReusePortPool_NeedsTcpMigrateReq()
    {
        var pool = new AcceptStrategyOptions { Strategy = AcceptStrategy.ReusePort, Workers = 1, MaxWorkers = 2 };
        var fixedPool = new AcceptStrategyOptions { Strategy = AcceptStrategy.ReusePort, Workers = 1 };
        var shared = new AcceptStrategyOptions { Strategy = AcceptStrategy.ThunderingHerd, Workers = 1, MaxWorkers = 2 };
        var validator = new AcceptStrategyOptionsValidator();

        var result = validator.Validate(null, pool);

        if (AcceptStrategyOptionsValidator.TcpMigrateReq() == "1")
        {
            Assert.True(result.Succeeded);
        }
        else
        {
            var failure = Assert.Single(result.Failures!);
            Assert.Contains("with Strategy = ReusePort needs net.ipv4.tcp_migrate_req = 1", failure, StringComparison.Ordinal);
            Assert.Contains("sysctl -w net.ipv4.tcp_migrate_req=1", failure, StringComparison.Ordinal);
        }

        Assert.True(validator.Validate(null, fixedPool).Succeeded);
        Assert.True(validator.Validate(null, shared).Succeeded);
    }

    [Fact]
    public async Task BenchmarkApp_PoolErrors_ListedWithTheOthers_ExitCode2()
    {
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy=Serialized --AcceptStrategy:Workers=2 --AcceptStrategy:MaxWorkers=1 " +
            "--AcceptStrategy:MinSpareWorkers=3 --AcceptStrategy:MaxSpareWorkers=2 --AcceptStrategy:Acceptors=0");
        await app.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(2, app.ExitCode);
        var lines = app.Output.Split('\n');
        Assert.Single(lines, l => l.Contains("MaxWorkers = 1 is below Workers = 2", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("MinSpareWorkers = 3 is above MaxSpareWorkers = 2", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("Acceptors = 0 is out of range", StringComparison.Ordinal));
        Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
    }
}
