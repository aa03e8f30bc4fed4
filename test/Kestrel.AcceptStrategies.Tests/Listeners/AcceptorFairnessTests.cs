using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

public sealed class AcceptorFairnessTests
{
    private const int Acceptors = 4;
    private const int Connections = 400;

    [Fact]
    public async Task Run_ThunderingHerdSequentialConnections_EveryAcceptorTakesAFairShare()
    {
        // One connection at a time, so every acceptor is idle when each arrives: the kernel wakes the EPOLLEXCLUSIVE
        // waiter registered first, and without re-registration acceptor 0 took nearly all 400. Re-registering after a
        // few accepts moves an acceptor to the back of the socket's wait queue, so the others get their turns. The
        // bound (each at least 40% of an even share) is far from both: about 100 each with the rotation, 0-10 before.
        await using var server = await TestServer.StartAsync(o =>
        {
            o.Strategy = AcceptStrategy.ThunderingHerd;
            o.Acceptors = Acceptors;
        });
        using var metrics = server.CollectMetrics();

        Assert.Empty(await Load.RunAsync(server.BaseAddress, total: Connections, concurrency: 1, connectionClose: true));

        Assert.Equal(Connections, metrics.TotalAccepted);
        var perAcceptor = Enumerable.Range(0, Acceptors)
            .Select(id => metrics.Accepted.Where(kv => kv.Key.Split('|')[2] == id.ToString()).Sum(kv => kv.Value))
            .ToArray();
        var minimum = Connections / Acceptors * 4 / 10;
        Assert.True(perAcceptor.All(n => n >= minimum), $"accepted per acceptor: {string.Join(", ", perAcceptor)} (each should be at least {minimum})");
    }
}
