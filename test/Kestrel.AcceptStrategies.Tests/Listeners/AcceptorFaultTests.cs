using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// An exception nobody expected on an acceptor thread (here from the accept mutex) must not end the process: it is
/// logged once per episode, the acceptor recovers, and unbinding still completes.
/// </summary>
public sealed class AcceptorFaultTests
{
    private const int AcceptorFailedEventId = 50;
    private const int AcceptRecoveredEventId = 3;
    private const int AcceptErrorEventId = 2;
    private const int EventLoopFailedEventId = 87;

    [Fact]
    public async Task Run_MutexThrowsThenWorks_LoggedOnceRecoversAndUnbinds()
    {
        var logger = new ListLogger();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var listener = CreateListener(new FaultyMutexFactory(failingEnters: 5), acceptors: 1, logger, services);
        var port = ((IPEndPoint)listener.EndPoint).Port;
        listener.Start();

        await ConnectAndAcceptOneAsync(listener);

        var failed = Assert.Single(logger.WithId(AcceptorFailedEventId));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, failed.Level);
        Assert.IsType<InvalidOperationException>(failed.Exception);
        Assert.Single(logger.WithId(AcceptRecoveredEventId));

        await listener.UnbindAsync().AsTask().WaitAsync(TestServer.Timeout);
        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout));
        await listener.DisposeAsync().AsTask().WaitAsync(TestServer.Timeout);
        await TestServer.AssertNoAcceptorThreadsAsync(port);
    }

    [Fact]
    public async Task Run_FlockFails_CountedUnderMutexAndLoggedWithTheError()
    {
        // The flock mutex reports a failed call (a lock file gone, ENOLCK) as an IOException: an accept error whose metric
        // tag is "mutex", one of a few fixed values, while the log says which call failed and why.
        var logger = new ListLogger();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var metrics = new AcceptMetrics(services);
        var lockPath = Path.Combine(Path.GetTempPath(), $"kas-fault-{Guid.NewGuid():N}.lock");
        File.WriteAllBytes(lockPath, []);
        using var flock = new FlockAcceptMutexFactory(lockPath);
        try
        {
            var factory = new FaultyMutexFactory(
                failingEnters: 3, inner: flock.Create, fault: static () => new IOException("flock on the accept lock file failed: ENOLCK"));
            var listener = CreateListener(factory, acceptors: 1, logger, services);
            var port = ((IPEndPoint)listener.EndPoint).Port;
            listener.Start();

            await ConnectAndAcceptOneAsync(listener);

            var error = Assert.Single(logger.WithId(AcceptErrorEventId));
            Assert.Contains("flock on the accept lock file failed: ENOLCK", error.Message, StringComparison.Ordinal);
            Assert.Single(logger.WithId(AcceptRecoveredEventId));
            Assert.Empty(logger.WithId(AcceptorFailedEventId));
            var errors = metrics.Snapshot(AcceptStrategyMetrics.AcceptErrorsName);
            Assert.Equal(3, Assert.Single(errors, kv => kv.Key.EndsWith("|mutex", StringComparison.Ordinal)).Value);
            Assert.Single(errors);

            await listener.UnbindAsync().AsTask().WaitAsync(TestServer.Timeout);
            await listener.DisposeAsync().AsTask().WaitAsync(TestServer.Timeout);
            await TestServer.AssertNoAcceptorThreadsAsync(port);
        }
        finally
        {
            File.Delete(lockPath);
        }
    }

    [Fact]
    public async Task Run_MutexAlwaysThrows_LoggedOncePerAcceptorAndUnbindCompletes()
    {
        var logger = new ListLogger();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = new FaultyMutexFactory(failingEnters: int.MaxValue);
        var listener = CreateListener(factory, acceptors: 2, logger, services);
        var port = ((IPEndPoint)listener.EndPoint).Port;
        listener.Start();

        // Several failures per acceptor (each backs off 5, 10, 20... ms), one log line each.
        using (var timeout = new CancellationTokenSource(TestServer.Timeout))
        {
            while (factory.Enters < 8 || logger.WithId(AcceptorFailedEventId).Count < 2)
            {
                await Task.Delay(10, timeout.Token);
            }
        }

        Assert.Equal(2, logger.WithId(AcceptorFailedEventId).Count);
        await listener.UnbindAsync().AsTask().WaitAsync(TestServer.Timeout);
        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout));
        await listener.DisposeAsync().AsTask().WaitAsync(TestServer.Timeout);
        await TestServer.AssertNoAcceptorThreadsAsync(port);
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task Run_AcceptingOneConnectionThrows_ThatConnectionEndsAndTheLoopServesOn(AcceptStrategy strategy)
    {
        // Something that throws while the event loop takes a connection (here the observer; a throwing meter listener
        // or logging provider would do the same) must end that connection, not leave its client waiting on a
        // connection nobody serves, and the loop must go on.
        var logger = new ListLogger();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var sockets = ListenSocketBinder.Bind(new IPEndPoint(IPAddress.Loopback, 0), strategy, 1, deferAccept: false, new SocketTransportOptions());
        var listener = new AcceptStrategyConnectionListener(
            sockets, strategy, 1, null, new SocketTransportOptions(),
            new AcceptStrategyMetrics(services.GetRequiredService<IMeterFactory>()), logger, new SingleLoggerFactory(logger),
            new ThrowingObserver(throws: 1));
        var port = ((IPEndPoint)listener.EndPoint).Port;
        listener.Start();

        using (var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            // The reset may come before the client has seen its connect complete or sent its request: any call may see it.
            var ended = await FailureOf(async () =>
            {
                await first.ConnectAsync(listener.EndPoint);
                await first.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
                return await first.ReceiveAsync(new byte[16], SocketFlags.None).WaitAsync(TestServer.Timeout);
            });
            Assert.IsNotType<TimeoutException>(ended);
        }

        Assert.Single(logger.WithId(EventLoopFailedEventId));
        await ConnectAndAcceptOneAsync(listener);

        await listener.UnbindAsync().AsTask().WaitAsync(TestServer.Timeout);
        await listener.DisposeAsync().AsTask().WaitAsync(TestServer.Timeout);
        await TestServer.AssertNoAcceptorThreadsAsync(port);
    }

    /// <summary>A client connects and sends a byte; the listener hands that connection to Kestrel's side, which disposes it.</summary>
    private static async Task ConnectAndAcceptOneAsync(AcceptStrategyConnectionListener listener)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.EndPoint);
        await client.SendAsync("x"u8.ToArray());
        var connection = await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout);
        Assert.NotNull(connection);
        await connection.DisposeAsync();
    }

    /// <summary>The read's failure, or null when it returned (0 at the client's end of stream, as after a FIN).</summary>
    private static async Task<Exception?> FailureOf(Func<Task<int>> read)
    {
        try
        {
            await read();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private sealed class ThrowingObserver(int throws) : IAcceptedConnectionObserver
    {
        private int _left = throws;

        public void Accepted(ConnectionContext connection)
        {
            if (Interlocked.Decrement(ref _left) >= 0)
            {
                throw new InvalidOperationException("Injected fault: the accepted-connection observer threw.");
            }
        }
    }

    private sealed class SingleLoggerFactory(ListLogger logger) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => logger;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }
    }

    private static AcceptStrategyConnectionListener CreateListener(
        IAcceptMutexFactory factory, int acceptors, ListLogger logger, ServiceProvider services)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();
        return new AcceptStrategyConnectionListener(
            [socket], AcceptStrategy.Serialized, acceptors, factory, new SocketTransportOptions(),
            new AcceptStrategyMetrics(services.GetRequiredService<IMeterFactory>()), logger, NullLoggerFactory.Instance);
    }
}
