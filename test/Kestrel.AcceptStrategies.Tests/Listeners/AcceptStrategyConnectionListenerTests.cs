using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

public sealed class AcceptStrategyConnectionListenerTests
{
    public static TheoryData<AcceptStrategy, int> StrategiesAndAcceptors()
    {
        var data = new TheoryData<AcceptStrategy, int>();
        foreach (var strategy in Enum.GetValues<AcceptStrategy>())
        {
            data.Add(strategy, 1);
            data.Add(strategy, 4);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(StrategiesAndAcceptors))]
    public async Task AcceptAsync_ConnectionPerRequestUnderConcurrency_EveryResponseCorrect(AcceptStrategy strategy, int acceptors)
    {
        await using var server = await TestServer.StartAsync(o => { o.Strategy = strategy; o.Acceptors = acceptors; });
        using var metrics = server.CollectMetrics();

        var failures = await Load.RunAsync(server.BaseAddress, total: 1500, concurrency: 200, connectionClose: true);

        Assert.Empty(failures);
        Assert.Equal(1500, metrics.TotalAccepted);
        Assert.All(metrics.Accepted.Keys, k => Assert.StartsWith($"{strategy}|127.0.0.1:{server.Port}|", k, StringComparison.Ordinal));
        AssertSpreadUnderLoad(strategy, acceptors, metrics);
    }

    [Theory]
    [MemberData(nameof(StrategiesAndAcceptors))]
    public async Task AcceptAsync_KeepAliveUnderConcurrency_EveryResponseCorrect(AcceptStrategy strategy, int acceptors)
    {
        await using var server = await TestServer.StartAsync(o => { o.Strategy = strategy; o.Acceptors = acceptors; });
        using var metrics = server.CollectMetrics();

        var failures = await Load.RunAsync(server.BaseAddress, total: 3000, concurrency: 250, connectionClose: false);

        Assert.Empty(failures);
        // Keep-alive: far fewer connections than requests, but hundreds of them at once.
        Assert.InRange(metrics.TotalAccepted, 100, 2999);
        AssertSpreadUnderLoad(strategy, acceptors, metrics);
    }

    [Fact]
    public async Task AcceptAsync_SerializedWithKestrelBehind_EveryAcceptorTakesConnections()
    {
        // Nothing is read: the hand-off queue (QueuedConnectionsPerAcceptor per acceptor) fills, then each acceptor that
        // takes one more blocks handing it over, with the mutex released, so the next one can only be taken by another
        // acceptor. Every acceptor has accepted by construction, whatever the scheduling; an acceptor that never took
        // the mutex, or whose connections were counted as another's, fails here.
        const int acceptors = 4;
        var connections = acceptors * (AcceptStrategyConnectionListener.QueuedConnectionsPerAcceptor + 1);
        await using var provider = ListenerServices.Create(AcceptStrategy.Serialized, acceptors);
        using var metrics = new AcceptMetrics(provider);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < connections; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(listener.EndPoint);

                // TCP_DEFER_ACCEPT queues a connection for accept(2) once its first bytes arrive.
                await client.SendAsync("GET / HTTP/1.1\r\n"u8.ToArray());
            }

            await metrics.WaitUntilAsync(m => m.TotalAccepted == connections, TestServer.Timeout, $"{connections} connections accepted");
            var perAcceptor = Enumerable.Range(0, acceptors).Select(metrics.AcceptedBy).ToArray();
            Assert.True(perAcceptor.All(n => n >= 1), $"accepted per acceptor: {string.Join(", ", perAcceptor)}; every acceptor should have taken one");

            // Kestrel catches up: every connection is handed over.
            var remotes = new HashSet<EndPoint>();
            for (var i = 0; i < connections; i++)
            {
                await using var connection = await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout);
                Assert.NotNull(connection);
                remotes.Add(connection.RemoteEndPoint!);
            }

            Assert.Equal(clients.Select(c => c.LocalEndPoint!).ToHashSet(), remotes);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>
    /// Under load with several acceptors, connections are spread where the strategy itself spreads them: ReusePort
    /// hashes each to one of the sockets, a ThunderingHerd acceptor moves to the back of the socket's wait queue every
    /// <see cref="EventLoop.RearmEvery"/> accepts (at least 100 here). Serialized acceptors take turns at a lock that
    /// does not queue: on a busy machine the one that releases it takes it again before a woken waiter runs, and one
    /// acceptor may take every connection (254 of 254 once, under CI load), so there the spread is asserted where it is
    /// certain, in <see cref="AcceptAsync_SerializedWithKestrelBehind_EveryAcceptorTakesConnections"/>.
    /// </summary>
    private static void AssertSpreadUnderLoad(AcceptStrategy strategy, int acceptors, AcceptMetrics metrics)
    {
        if (acceptors > 1)
        {
            Assert.True(metrics.Accepted.Count > 1, $"Every connection went through one acceptor: {string.Join(", ", metrics.Accepted)}");
        }
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task AcceptAsync_AfterUnbind_ReturnsNull(AcceptStrategy strategy)
    {
        await using var provider = ListenerServices.Create(strategy, acceptors: 2);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.EndPoint);
        await client.SendAsync("GET / HTTP/1.1\r\n"u8.ToArray());
        await using (var connection = await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout))
        {
            Assert.NotNull(connection);
            Assert.Equal(client.LocalEndPoint, connection.RemoteEndPoint);
        }

        await listener.UnbindAsync().AsTask().WaitAsync(TestServer.Timeout);

        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout));
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(() => late.ConnectAsync(listener.EndPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task UnbindAsyncAndDisposeAsync_CalledTwice_AreIdempotentAndReleaseThePort(AcceptStrategy strategy)
    {
        await using var provider = ListenerServices.Create(strategy, acceptors: 3);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        var endPoint = (IPEndPoint)listener.EndPoint;
        Assert.NotEqual(0, endPoint.Port);

        await listener.UnbindAsync();
        await listener.UnbindAsync();
        await listener.DisposeAsync();
        await listener.DisposeAsync();

        // No SO_REUSEPORT socket or duplicate is left: a plain socket can take the port again.
        using var rebind = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        rebind.Bind(endPoint);
        rebind.Listen();
        await TestServer.AssertNoAcceptorThreadsAsync(endPoint.Port);
    }

    [Fact]
    public async Task DisposeAsync_WithoutUnbind_StopsAcceptorThreads()
    {
        await using var provider = ListenerServices.Create(AcceptStrategy.Serialized, acceptors: 4);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)listener.EndPoint).Port;
        Assert.Equal(4, TestServer.ThreadNames().Count(n => n.StartsWith($"acc:{port}#", StringComparison.Ordinal)));

        await listener.DisposeAsync().AsTask().WaitAsync(TestServer.Timeout);

        Assert.DoesNotContain(TestServer.ThreadNames(), n => n.StartsWith($"acc:{port}#", StringComparison.Ordinal));
    }

    [Fact]
    public void CanBind_NonIPEndPoints_FallThroughToKestrel()
    {
        using var provider = ListenerServices.Create(AcceptStrategy.ReusePort, acceptors: 1);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();

        Assert.True(factory.CanBind(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.True(factory.CanBind(new IPEndPoint(IPAddress.IPv6Loopback, 0)));
        Assert.False(factory.CanBind(new UnixDomainSocketEndPoint("/tmp/x.sock")));
        Assert.False(factory.CanBind(new FileHandleEndPoint(3, FileHandleType.Tcp)));
        Assert.False(factory.CanBind(new DnsEndPoint("localhost", 80)));
    }

    [Fact]
    public async Task BindAsync_UnixEndPoint_ThrowsNamingTheEndPoint()
    {
        await using var provider = ListenerServices.Create(AcceptStrategy.ReusePort, acceptors: 1);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();

        var error = await Assert.ThrowsAsync<NotSupportedException>(() => factory.BindAsync(new UnixDomainSocketEndPoint("/tmp/x.sock")).AsTask());
        Assert.Contains("UnixDomainSocketEndPoint", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task BindAsync_PortTakenByPlainListener_ThrowsAddressInUse(AcceptStrategy strategy)
    {
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        other.Listen();
        await using var provider = ListenerServices.Create(strategy, acceptors: 2);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();

        await Assert.ThrowsAsync<AddressInUseException>(() => factory.BindAsync(other.LocalEndPoint!).AsTask());
    }

    [Fact]
    public async Task BindAsync_ReusePortGroupOfAnotherOwner_ThrowsAddressInUseInsteadOfJoiningIt()
    {
        // What another process's SO_REUSEPORT listener looks like to us: the kernel would let us join its group.
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.SetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_REUSEPORT, BitConverter.GetBytes(1));
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        other.Listen();
        await using var provider = ListenerServices.Create(AcceptStrategy.ReusePort, acceptors: 2);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();

        await Assert.ThrowsAsync<AddressInUseException>(() => factory.BindAsync(other.LocalEndPoint!).AsTask());
    }
}
