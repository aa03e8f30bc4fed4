using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Worker;

namespace Kestrel.AcceptStrategies.Tests.Worker;

/// <summary>How a worker reads which inherited descriptor is which, as its supervisor wrote it in the environment.</summary>
public sealed class WorkerIdentityTests
{
    private const string Serialized = "slot=0;generation=1;budget=0;control=3;strategy=Serialized";

    [Fact]
    public void Parse_LockPerEndpoint_EachBindingGetsItsEndpointsOwnLock()
    {
        // Two bindings of port 0 (two endpoints Kestrel asked for alike) and an admin port, each with its own lock.
        var worker = WorkerIdentity.Parse(
            Serialized + ";lockfd=4", "127.0.0.1:0=5;127.0.0.1:0=7;[::1]:8080=9", "127.0.0.1:0=4;127.0.0.1:0=6;[::1]:8080=8");

        AssertTaken(worker, "127.0.0.1:0", [5], 4);
        AssertTaken(worker, "127.0.0.1:0", [7], 6);
        AssertTaken(worker, "[::1]:8080", [9], 8);
        Assert.Null(worker.TakeEndpoint("127.0.0.1:0"));
    }

    [Fact]
    public void Parse_SupervisorOfAnEarlierBuild_EveryEndpointSharesItsOneLock()
    {
        // No lock variable at all: what a supervisor started before per-endpoint locks passes a worker SIGHUP starts.
        var worker = WorkerIdentity.Parse(Serialized + ";lockfd=4", "127.0.0.1:5000=5;127.0.0.1:5001=6", locks: null);

        AssertTaken(worker, "127.0.0.1:5000", [5], 4);
        AssertTaken(worker, "127.0.0.1:5001", [6], 4);
    }

    [Fact]
    public void Parse_NoSerialized_NoLocks()
    {
        var worker = WorkerIdentity.Parse("slot=1;generation=2;budget=0;control=3;strategy=ReusePort;lockfd=", "127.0.0.1:5000=4,5", "");

        AssertTaken(worker, "127.0.0.1:5000", [4, 5], null);
    }

    [Fact]
    public void Parse_SupervisorsAcceptors_KeptFromWhatTheSupervisorWrote_NullFromAnEarlierSupervisor()
    {
        var written = WorkerEnvironment.Format(1, 2, 0, 3, AcceptStrategy.ThunderingHerd, acceptors: 3, lockFd: null);

        Assert.Equal(3, WorkerIdentity.Parse(written, "127.0.0.1:5000=4", "").Acceptors);
        Assert.Null(WorkerIdentity.Parse("slot=1;generation=2;budget=0;control=3;strategy=ReusePort;lockfd=", "127.0.0.1:5000=4,5", "").Acceptors);
    }

    [Theory]
    [InlineData("/run/app/app.sock")]
    [InlineData("/tmp/a;b=c,d%3B%25.sock")]
    public void Parse_UnixSocketPath_WithTheFormatsSeparators_ReadBackAsWritten(string path)
    {
        var listen = WorkerEnvironment.FormatFds([(path, [7]), ("127.0.0.1:5000", [8, 9])]);

        var worker = WorkerIdentity.Parse(WorkerEnvironment.Format(0, 1, 0, 3, AcceptStrategy.ReusePort, 2, null), listen, "");

        AssertTaken(worker, path, [7], null);
        AssertTaken(worker, "127.0.0.1:5000", [8, 9], null);
    }

    [Theory]
    [InlineData("127.0.0.1:5001=4")]
    [InlineData("127.0.0.1:5000=4;127.0.0.1:5000=6")]
    [InlineData("127.0.0.1:5000=4,6")]
    [InlineData("127.0.0.1:5000")]
    public void Parse_LocksThatDoNotMatchTheSockets_OneErrorNamingTheVariables(string locks)
    {
        var error = Assert.Throws<InvalidOperationException>(() => WorkerIdentity.Parse(Serialized, "127.0.0.1:5000=5", locks));

        Assert.Contains("KESTREL_ACCEPT_STRATEGIES_LOCK_FDS='" + locks + "'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not a worker environment written by a Kestrel.AcceptStrategies supervisor", error.Message, StringComparison.Ordinal);
    }

    private static void AssertTaken(WorkerIdentity worker, string endpoint, int[] fds, int? lockFd)
    {
        var inherited = worker.TakeEndpoint(endpoint);
        Assert.NotNull(inherited);
        Assert.Equal(fds, inherited.Fds);
        Assert.Equal(lockFd, inherited.LockFd);
    }
}
