// Test cases of aspnetcore's src/Servers/Kestrel/test/InMemory.FunctionalTests/ConnectionLimitTests.cs, same names,
// written for this harness; each runs over real TCP on all four transports (upstream runs them on an in-memory
// transport, which tests no transport).
// Differs from upstream's cases:
// - Upstream wraps the connection in Kestrel's internal limit middleware with a counter that raises events; here the
//   limit is the public Limits.MaxConcurrentConnections (from which Kestrel builds the same middleware), and the
//   counter's acquire and release are read from Kestrel's public metrics: kestrel.active_connections +1 and -1.
// - ResetsCountWhenConnectionClosed waits for the release while the server still runs and then shows the one slot
//   is free again by serving a second connection (upstream only waits for the release event).
// - ConnectionCountingReturnsToZero bounds its waits by Deadline.Default (30 s) instead of 120 s.
// - A rejected connection counts as closed whether Kestrel ends it with a FIN or a reset: over TCP a connection whose
//   request was never read may be reset.
// Dropped: none.

using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class ConnectionLimitTests : TransportTestBase
{
    [Fact]
    public async Task ResetsCountWhenConnectionClosed()
    {
        using var metrics = new KestrelMetricsCapture();
        var acquired = metrics.When(m => m.Count(KestrelMetricsCapture.ActiveConnections, 1) >= 1);
        var released = metrics.When(m => m.Count(KestrelMetricsCapture.ActiveConnections, -1) >= 1);
        var finishRequest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartLimitedServerAsync(1, HelloThenWait(finishRequest), metrics);

        using (var first = await server.ConnectAsync())
        {
            await first.SendAsync(Http1.Get(connection: "keep-alive"));
            await first.ExpectAsync("HTTP/1.1 200 OK");
            await acquired.OrTimeout();
            finishRequest.TrySetResult();
        }

        await released.OrTimeout();

        // The only slot is free again.
        using var second = await server.ConnectAsync();
        await second.SendAsync(Http1.Get(connection: "keep-alive"));
        await second.ExpectAsync("HTTP/1.1 200 OK");
    }

    [Fact]
    public async Task UpgradedConnectionsCountsAgainstDifferentLimit()
    {
        await using var server = await StartLimitedServerAsync(1, async context =>
        {
            var upgrade = context.Features.GetRequiredFeature<IHttpUpgradeFeature>();
            if (upgrade.IsUpgradableRequest)
            {
                await upgrade.UpgradeAsync();
                await UntilRequestAborted(context);
            }
        });

        // Once upgraded, a connection leaves the ordinary limit of 1 (it counts against the upgraded limit): one more
        // ordinary connection is served, the next is refused.
        using var upgraded = await server.ConnectAsync();
        await upgraded.SendAsync(Http1.Get(connection: "Upgrade"));
        await upgraded.ExpectAsync("HTTP/1.1 101");

        using var ordinary = await server.ConnectAsync();
        await ordinary.SendAsync(Http1.Get(connection: "keep-alive"));
        await ordinary.ExpectAsync("HTTP/1.1 200 OK");

        using var refused = await server.ConnectAsync();
        await ExpectRefusedAsync(refused);
    }

    [Fact]
    public async Task RejectsConnectionsWhenLimitReached()
    {
        const int limit = 10;
        const int extra = 10;
        using var metrics = new KestrelMetricsCapture();
        var finishRequests = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartLimitedServerAsync(limit, HelloThenWait(finishRequests), metrics))
        {
            for (var i = 0; i < limit; i++)
            {
                var served = await server.ConnectAsync();
                await served.SendAsync(Http1.Get(connection: "keep-alive"));
                await served.ExpectAsync("HTTP/1.1 200 OK");
            }

            // Every further connection is refused, and counted once as rejected when it is.
            for (var i = 1; i <= extra; i++)
            {
                using (var refused = await server.ConnectAsync())
                {
                    await ExpectRefusedAsync(refused);
                }

                var rejected = metrics.On(KestrelMetricsCapture.RejectedConnections);
                Assert.Equal(i, rejected.Count);
                Assert.All(rejected, m => Assert.Equal(1, m.Value));
            }

            finishRequests.TrySetResult();
        }

        var durations = metrics.On(KestrelMetricsCapture.ConnectionDuration);
        Assert.Equal(limit, durations.Count(m => m.ErrorType is null));
        Assert.Equal(extra, durations.Count(m => m.ErrorType == "max_concurrent_connections_exceeded"));
    }

    [Fact]
    public async Task ConnectionCountingReturnsToZero()
    {
        const int connections = 100;
        using var metrics = new KestrelMetricsCapture();
        var allAcquired = metrics.When(m => m.Count(KestrelMetricsCapture.ActiveConnections, 1) >= connections);
        var allReleased = metrics.When(m => m.Count(KestrelMetricsCapture.ActiveConnections, -1) >= connections);
        await using var server = await StartLimitedServerAsync(uint.MaxValue, _ => Task.CompletedTask, metrics);

        // All at once, each served and closed again.
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get(connection: "keep-alive"));
            await client.ExpectAsync("HTTP/1.1 200");
        })).OrTimeout();

        await allAcquired.OrTimeout();
        await allReleased.OrTimeout();
        Assert.Equal(connections, metrics.Count(KestrelMetricsCapture.ActiveConnections, 1));
        Assert.Equal(connections, metrics.Count(KestrelMetricsCapture.ActiveConnections, -1));
    }

    private Task<RunningServer> StartLimitedServerAsync(long maxConnections, RequestDelegate app, KestrelMetricsCapture? metrics = null) =>
        StartServerAsync(app, new ServerSetup { Limits = limits => limits.MaxConcurrentConnections = maxConnections, Meters = metrics });

    /// <summary>An app that starts its response ("Hello") and then holds the request until <paramref name="finish"/>.</summary>
    private static RequestDelegate HelloThenWait(TaskCompletionSource finish) => async context =>
    {
        await context.Response.WriteAsync("Hello");
        await finish.Task.OrTimeout();
    };

    /// <summary>A connection over the limit: Kestrel closes it without answering (sending may already fail).</summary>
    private static async Task ExpectRefusedAsync(RawConnection connection)
    {
        try
        {
            await connection.SendAsync(Http1.Get(connection: "keep-alive"));
        }
        catch (IOException)
        {
            // Kestrel closed it before the request was out.
        }

        await connection.ExpectClosedAsync();
    }
}

public sealed class ConnectionLimitTestsOnSockets : ConnectionLimitTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class ConnectionLimitTestsOnReusePort : ConnectionLimitTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class ConnectionLimitTestsOnThunderingHerd : ConnectionLimitTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class ConnectionLimitTestsOnSerialized : ConnectionLimitTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class ConnectionLimitTestsOnSocketsInline : ConnectionLimitTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class ConnectionLimitTestsOnReusePortInline : ConnectionLimitTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
