using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>MaxWorkers, MinSpareWorkers and MaxSpareWorkers: defaults, and bad values reported with every other error.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class PoolOptionsTests
{
    [Fact]
    public void Defaults_PoolOff_OneToTwoSpare_Valid()
    {
        var options = new WorkerProcessOptions { Workers = 2 };

        Assert.Equal((0, 1, 2), (options.MaxWorkers, options.MinSpareWorkers, options.MaxSpareWorkers));
        Assert.Empty(OptionsValidation.Validate(new AcceptStrategyOptions(), options, inWorker: false));
    }

    [Theory]
    [InlineData(2, 1, 1, 2, "WorkerProcesses:MaxWorkers = 1 is below Workers = 2, the number started")]
    [InlineData(0, 4, 1, 2, "WorkerProcesses:MaxWorkers = 4 needs worker mode: with Workers = 0 the app is one process")]
    [InlineData(1, -1, 1, 2, "WorkerProcesses:MaxWorkers = -1 is out of range")]
    [InlineData(1, 4, -1, 2, "WorkerProcesses:MinSpareWorkers = -1 is negative")]
    [InlineData(1, 4, 1, -2, "WorkerProcesses:MaxSpareWorkers = -2 is negative")]
    [InlineData(1, 4, 3, 2, "WorkerProcesses:MinSpareWorkers = 3 is above MaxSpareWorkers = 2")]
    public void Validate_OneBadValue_OneFailure(int workers, int maxWorkers, int minSpare, int maxSpare, string expected)
    {
        var options = new WorkerProcessOptions
        {
            Workers = workers,
            MaxWorkers = maxWorkers,
            MinSpareWorkers = minSpare,
            MaxSpareWorkers = maxSpare,
        };

        var result = OptionsValidation.Validate(new AcceptStrategyOptions { Strategy = AcceptStrategy.Serialized }, options, inWorker: false);

        Assert.StartsWith(expected, Assert.Single(result), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ReusePortPool_NeedsSteeringOrTcpMigrateReq()
    {
        var reusePort = new AcceptStrategyOptions { Strategy = AcceptStrategy.ReusePort };
        var pool = new WorkerProcessOptions { Workers = 1, MaxWorkers = 2 };
        var fixedPool = new WorkerProcessOptions { Workers = 1 };

        var result = OptionsValidation.Validate(reusePort, pool, inWorker: false);

        if (ReusePortSteering.Unavailable == 0 || OptionsValidation.TcpMigrateReq() == "1")
        {
            Assert.Empty(result);
        }
        else
        {
            var failure = Assert.Single(result);
            Assert.Contains("SO_ATTACH_REUSEPORT_CBPF failed here", failure, StringComparison.Ordinal);
            Assert.Contains("sysctl -w net.ipv4.tcp_migrate_req=1", failure, StringComparison.Ordinal);
        }

        Assert.Empty(OptionsValidation.Validate(reusePort, fixedPool, inWorker: false));
        Assert.Empty(OptionsValidation.Validate(new AcceptStrategyOptions { Strategy = AcceptStrategy.ThunderingHerd }, pool, inWorker: false));
    }

    /// <summary>This kernel steers: a ReusePort pool needs no sysctl (tcp_migrate_req is 0 by default, as here).</summary>
    [Fact]
    public void ReusePortSteering_AvailableOnThisKernel()
    {
        Assert.Equal(0, ReusePortSteering.Unavailable);
    }

    [Fact]
    public async Task BenchmarkApp_PoolErrors_ListedWithTheOthers_ExitCode78()
    {
        await using var app = ChildProcess.StartBenchmarkApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy=Serialized --WorkerProcesses:Workers=2 --WorkerProcesses:MaxWorkers=1 " +
            "--WorkerProcesses:MinSpareWorkers=3 --WorkerProcesses:MaxSpareWorkers=2 --AcceptStrategy:Acceptors=0");
        await app.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(78, app.ExitCode);
        var lines = app.Output.Split('\n');
        Assert.Single(lines, l => l.Contains("MaxWorkers = 1 is below Workers = 2", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("MinSpareWorkers = 3 is above MaxSpareWorkers = 2", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("Acceptors = 0 is out of range", StringComparison.Ordinal));
        Assert.DoesNotContain("started in slot", app.Output, StringComparison.Ordinal);
    }
}
