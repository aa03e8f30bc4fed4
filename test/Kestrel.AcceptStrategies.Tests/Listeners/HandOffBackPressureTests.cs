using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// A Kestrel that keeps falling behind: the hand-off queue fills and drains hundreds of times, and an event loop that
/// holds a connection it has no room for must take up accepting again every time (a lost wake-up left its listening
/// socket out of its epoll set: the connections behind it stalled in the kernel's accept queue).
/// </summary>
public sealed class HandOffBackPressureTests
{
    private const int Connections = 3000;

    [Theory]
    [InlineData(AcceptStrategy.ReusePort, 1)]
    [InlineData(AcceptStrategy.ReusePort, 2)]
    [InlineData(AcceptStrategy.ThunderingHerd, 2)]
    public async Task KestrelBehindAgainAndAgain_EveryConnectionIsHandedOverAndClosed(AcceptStrategy strategy, int acceptors)
    {
        await using var provider = ListenerServices.Create(strategy, acceptors);
        var factory = provider.GetRequiredService<AcceptStrategyListenerFactory>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        // Kestrel's accept loop, slowed down: a pause every few connections lets the queue (4 per acceptor) fill.
        var taken = 0;
        var consumer = Task.Run(async () =>
        {
            while (taken < Connections)
            {
                var connection = await listener.AcceptAsync(timeout.Token);
                Assert.NotNull(connection);
                taken++;
                await connection.DisposeAsync();
                if (taken % 6 == 0)
                {
                    await Task.Delay(1, timeout.Token);
                }
            }
        });

        // Clients that each send a request (TCP_DEFER_ACCEPT waits for it) and wait for the server to close.
        var closedByServer = 0;
        var clients = Enumerable.Range(0, 24).Select(_ => Task.Run(async () =>
        {
            var request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray();
            var buffer = new byte[64];
            while (Interlocked.Increment(ref closedByServer) <= Connections)
            {
                using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await client.ConnectAsync(listener.EndPoint, timeout.Token);
                await client.SendAsync(request, timeout.Token);
                Assert.Equal(0, await client.ReceiveAsync(buffer, timeout.Token));
            }
        })).ToArray();

        var all = Task.WhenAll(clients.Append(consumer));
        var finished = await Task.WhenAny(all, Task.Delay(Timeout.Infinite, timeout.Token).ContinueWith(_ => { }, TaskScheduler.Default));
        Assert.True(finished == all, $"Stalled: Kestrel was given {taken} of {Connections} connections in 60 s.");
        await all;
        Assert.Equal(Connections, taken);
    }
}
