using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Worker;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Kestrel.AcceptStrategies.Tests.Worker;

/// <summary>
/// The drain's grace on a fake clock: a connection with no request in the app is cut when the grace ends and not
/// before, and a drain whose connections all close goes on at once.
/// </summary>
public sealed class WorkerDrainGraceTests
{
    // Less than the grace in real time: a drain that waited on the system's clock instead would time out here.
    private static readonly TimeSpan LessThanTheGrace = TimeSpan.FromMilliseconds(900);

    [Fact]
    public async Task Drain_IdleConnection_CutWhenTheGraceEndsNotBefore()
    {
        using var worker = new DrainingWorker();
        var connection = worker.Accept("idle");

        var draining = worker.Drain.DrainAsync("test");

        worker.Time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(draining.IsCompleted, "The drain ended before its grace did.");
        Assert.False(connection.Aborted, "The idle connection was cut before the grace ended.");

        worker.Time.Advance(TimeSpan.FromMilliseconds(1));
        await draining.WaitAsync(LessThanTheGrace);
        Assert.True(connection.Aborted, "The idle connection was not cut when the grace ended.");
        Assert.True(worker.Lifetime.Stopped);
    }

    [Fact]
    public async Task Drain_ConnectionsCloseWithinTheGrace_StopsAtOnce()
    {
        using var worker = new DrainingWorker();
        var connection = worker.Accept("busy");

        var draining = worker.Drain.DrainAsync("test");
        Assert.False(draining.IsCompleted, "The drain ended with a connection open and no time passed.");

        // The connection ends (its client closed): the drain goes on without the clock moving.
        connection.Close();
        await draining.WaitAsync(LessThanTheGrace);
        Assert.True(worker.Lifetime.Stopped);
    }

    [Fact]
    public async Task Drain_NoConnection_StopsAtOnce()
    {
        using var worker = new DrainingWorker();

        await worker.Drain.DrainAsync("test").WaitAsync(TestServer.Timeout);

        Assert.True(worker.Lifetime.Stopped);
    }

    private sealed class DrainingWorker : IDisposable
    {
        private readonly ControlChannel _supervisor;
        private readonly WorkerControlClient _control;

        public unsafe DrainingWorker()
        {
            var fds = stackalloc int[2];
            Assert.Equal(0, Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_CLOEXEC, 0, fds));
            _supervisor = new ControlChannel(fds[0]);
            var identity = new WorkerIdentity(slot: 0, generation: 1, budget: 0, controlFd: fds[1], AcceptStrategy.ReusePort, acceptors: null, []);
            _control = new WorkerControlClient(identity);
            var requests = new WorkerRequests(identity, _control);
            var heartbeat = new WorkerHeartbeat(_control, requests, Listeners, Options.Create(new WorkerProcessOptions()));
            Drain = new WorkerDrain(Listeners, requests, heartbeat, Lifetime, NullLoggerFactory.Instance) { Time = Time };
        }

        public FakeTimeProvider Time { get; } = new();

        public WorkerListeners Listeners { get; } = new();

        public FakeLifetime Lifetime { get; } = new();

        public WorkerDrain Drain { get; }

        public RecordingConnection Accept(string id)
        {
            var connection = new RecordingConnection(id);
            Listeners.Connections.Accepted(connection);
            return connection;
        }

        public void Dispose()
        {
            _control.Dispose();
            _supervisor.Dispose();
        }
    }

    private sealed class RecordingConnection(string id) : DefaultConnectionContext(id)
    {
        private readonly CancellationTokenSource _closed = new();

        // The base constructor sets its own token; this one closes only when the test says so.
        public override CancellationToken ConnectionClosed { get => _closed.Token; set { } }

        public bool Aborted { get; private set; }

        public override void Abort(ConnectionAbortedException abortReason) => Aborted = true;

        public void Close() => _closed.Cancel();
    }

    private sealed class FakeLifetime : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public bool Stopped { get; private set; }

        public void StopApplication() => Stopped = true;
    }
}
