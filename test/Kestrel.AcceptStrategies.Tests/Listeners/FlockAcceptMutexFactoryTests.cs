using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>The cross-process accept mutex: real flock(2) on a real file, one open file description per mutex.</summary>
public sealed class FlockAcceptMutexFactoryTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("flock-test-").FullName;

    private string LockPath => Path.Combine(_directory, "accept.lock");

    public FlockAcceptMutexFactoryTests() => File.WriteAllBytes(LockPath, []);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task TryEnter_HeldThroughAnotherDescription_WaitsUntilReleased()
    {
        using var factory = new FlockAcceptMutexFactory(LockPath);
        using var first = factory.Create();
        using var second = factory.Create();
        Assert.True(first.TryEnter(CancellationToken.None));

        var entered = Task.Factory.StartNew(() => second.TryEnter(CancellationToken.None), TaskCreationOptions.LongRunning);

        // Two acceptors of one process must exclude each other, not share the lock through one description.
        Assert.NotSame(entered, await Task.WhenAny(entered, Task.Delay(300)));
        first.Exit();
        Assert.True(await entered.WaitAsync(TestServer.Timeout));
        second.Exit();
    }

    [Fact]
    public async Task UnbindAsync_AcceptorsBlockedInFlock_ReturnsAndThreadsLeaveOnceLockIsFree()
    {
        // Someone else (another worker, here this test) holds the lock, so every acceptor blocks in flock(2).
        using var holder = new FlockAcceptMutexFactory(LockPath).Create();
        Assert.True(holder.TryEnter(CancellationToken.None));

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        var listener = new AcceptStrategyConnectionListener(
            [socket], AcceptStrategy.Serialized, 2, new FlockAcceptMutexFactory(LockPath), new SocketTransportOptions(),
            new AcceptStrategyMetrics(meters), NullLogger.Instance, NullLoggerFactory.Instance);
        listener.Start();
        var port = ((IPEndPoint)listener.EndPoint).Port;
        await WaitUntilAsync(() => TestServer.ThreadNames().Count(n => n.StartsWith($"acc:{port}#", StringComparison.Ordinal)) == 2);

        // A blocked flock cannot be interrupted; unbinding must not wait for it.
        await listener.UnbindAsync().AsTask().WaitAsync(TestServer.Timeout);
        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout));
        await listener.DisposeAsync().AsTask().WaitAsync(TestServer.Timeout);

        // Once the lock is free each acceptor takes it, sees the stop, releases it and leaves.
        holder.Exit();
        await WaitUntilAsync(() => !TestServer.ThreadNames().Any(n => n.StartsWith($"acc:{port}#", StringComparison.Ordinal)));
        Assert.True(holder.TryEnter(CancellationToken.None), "an exiting acceptor kept the lock");
        holder.Exit();
    }

    [Fact]
    public async Task AcceptAsync_SerializedWithFlock_AcceptsEveryConnection()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        await using var listener = new AcceptStrategyConnectionListener(
            [socket], AcceptStrategy.Serialized, 3, new FlockAcceptMutexFactory(LockPath), new SocketTransportOptions(),
            new AcceptStrategyMetrics(meters), NullLogger.Instance, NullLoggerFactory.Instance);
        listener.Start();

        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < 50; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(listener.EndPoint);
                await client.SendAsync("x"u8.ToArray()); // TCP_DEFER_ACCEPT is not set here, but a real client speaks first
            }

            for (var i = 0; i < 50; i++)
            {
                var connection = await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout);
                Assert.NotNull(connection);
                await connection.DisposeAsync();
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TestServer.Timeout);
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
