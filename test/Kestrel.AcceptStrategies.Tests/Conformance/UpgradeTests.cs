// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/UpgradeTests.cs (the real-TCP version, before
// the file moved to the in-memory transport), same names, written for this harness; each runs on all four transports.
// Differs from upstream's cases:
// - Real clock: the 101 response's Date header is matched by its shape (Http1.AnyDate).
// - RejectsUpgradeWhenLimitReached sets the public Limits.MaxConcurrentUpgradedConnections instead of handing Kestrel
//   an internal connection manager with a quota; Kestrel builds the same counter from the limit.
// - Apps that stay upgraded until the connection goes away wait for RequestAborted to fire (bounded) instead of
//   polling it every 100 ms.
// - AcceptsRequestWithChunkedEncodingAndUpgrade reads the body until its end: over TCP one read may return part of it.
// - Exception messages are compared with Kestrel's own string table (KestrelMessages), as upstream compares them with
//   Kestrel's internal CoreStrings.
// Dropped: none.

using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class UpgradeTests : TransportTestBase
{
    [Fact]
    public async Task ResponseThrowsAfterUpgrade()
    {
        var app = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(context => ReportTo(app, async () =>
        {
            var upgraded = await UpgradeFeature(context).UpgradeAsync();

            // Once upgraded, the HTTP response body is closed for writing: the stream is the connection's now.
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => context.Response.Body.WriteAsync(new byte[1]).AsTask());
            Assert.Equal(KestrelMessages.Get("ResponseStreamWasUpgraded"), refused.Message);

            await upgraded.WriteAsync(Encoding.ASCII.GetBytes("New protocol data\n"));
            await upgraded.FlushAsync();
        }));

        using var client = await server.ConnectAsync();
        await client.SendAsync(Http1.Get(connection: "Upgrade"));
        await client.ExpectAsync(Http1.SwitchingProtocols());
        await client.ExpectAsync("New protocol data");
        await app.Task.OrTimeout();
    }

    [Fact]
    public async Task RequestBodyAlwaysEmptyAfterUpgrade()
    {
        const string fromClient = "Custom protocol send";
        const string fromServer = "Custom protocol recv";
        var app = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(context => ReportTo(app, async () =>
        {
            var upgraded = await UpgradeFeature(context).UpgradeAsync();

            // What the client sends after the upgrade belongs to the upgraded stream, never to the request body.
            Assert.Equal(0, await context.Request.Body.ReadAsync(new byte[128]).OrTimeout());

            using var lines = new StreamReader(upgraded, Encoding.ASCII, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
            Assert.Equal(fromClient, await lines.ReadLineAsync().OrTimeout());
            await upgraded.WriteAsync(Encoding.ASCII.GetBytes(fromServer + "\n"));
            await upgraded.FlushAsync();
        }));

        using var client = await server.ConnectAsync();
        await client.SendAsync(Http1.Get(connection: "Upgrade"));
        await client.ExpectAsync(Http1.SwitchingProtocols());
        await client.SendAsync(fromClient, "");
        await client.ExpectAsync(fromServer);
        await app.Task.OrTimeout();
    }

    [Fact]
    public async Task UpgradeCannotBeCalledMultipleTimes()
    {
        var secondUpgrade = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(async context =>
        {
            var feature = UpgradeFeature(context);
            await feature.UpgradeAsync();
            var failure = await FailureOf(feature.UpgradeAsync);
            secondUpgrade.TrySetResult(failure);
            if (failure is not null)
            {
                throw failure;
            }

            await UntilRequestAborted(context);
        }))
        {
            // The app fails after upgrading, so Kestrel closes the upgraded connection.
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get(connection: "Upgrade"));
            await client.ExpectAsync(Http1.SwitchingProtocols());
            await client.ExpectClosedAsync();
        }

        var refused = Assert.IsType<InvalidOperationException>(await secondUpgrade.Task.OrTimeout());
        Assert.Equal(KestrelMessages.Get("UpgradeCannotBeCalledMultipleTimes"), refused.Message);
    }

    [Fact]
    public async Task AcceptsRequestWithContentLengthAndUpgrade()
    {
        // A request with a body cannot be upgraded; it is served as an ordinary request with that body.
        await using var server = await StartServerAsync(async context =>
        {
            Assert.False(UpgradeFeature(context).IsUpgradableRequest);
            Assert.Equal(1, context.Request.ContentLength);
            Assert.Equal(1, await context.Request.Body.ReadAsync(new byte[10]).OrTimeout());
        });

        using var client = await server.ConnectAsync();
        await client.SendAsync("POST / HTTP/1.1", "Host:", "Content-Length: 1", "Connection: Upgrade", "", "A");
        await client.ExpectAsync("HTTP/1.1 200 OK");
    }

    [Fact]
    public async Task AcceptsRequestWithNoContentLengthAndUpgrade()
    {
        // Without a body (Content-Length: 0, or none on a GET) the request is upgradable; the app does not upgrade it.
        await using var server = await StartServerAsync(async context =>
        {
            Assert.True(UpgradeFeature(context).IsUpgradableRequest);
            if (HttpMethods.IsPost(context.Request.Method))
            {
                Assert.Equal(0, context.Request.ContentLength);
            }

            Assert.Equal(0, await context.Request.Body.ReadAsync(new byte[10]).OrTimeout());
        });

        using (var post = await server.ConnectAsync())
        {
            await post.SendAsync("POST / HTTP/1.1", "Host:", "Content-Length: 0", "Connection: Upgrade, keep-alive", "", "");
            await post.ExpectAsync("HTTP/1.1 200 OK");
        }

        using (var get = await server.ConnectAsync())
        {
            await get.SendAsync(Http1.Get(connection: "Upgrade"));
            await get.ExpectAsync("HTTP/1.1 200 OK");
        }
    }

    [Fact]
    public async Task AcceptsRequestWithChunkedEncodingAndUpgrade()
    {
        await using var server = await StartServerAsync(async context =>
        {
            Assert.True(HttpMethods.IsPost(context.Request.Method));
            Assert.Null(context.Request.ContentLength);
            Assert.Equal("chunked", context.Request.Headers[HeaderNames.TransferEncoding]);
            Assert.False(UpgradeFeature(context).IsUpgradableRequest);

            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body).OrTimeout();
            Assert.Equal(11, body.Length);
        });

        using var client = await server.ConnectAsync();
        await client.SendAsync("POST / HTTP/1.1", "Host:", "Transfer-Encoding: chunked", "Connection: Upgrade", "", "B", "Hello World", "0", "", "");
        await client.ExpectAsync("HTTP/1.1 200 OK");
    }

    [Fact]
    public async Task ThrowsWhenUpgradingNonUpgradableRequest()
    {
        var attempt = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(async context =>
        {
            var feature = UpgradeFeature(context);
            Assert.False(feature.IsUpgradableRequest);
            attempt.TrySetResult(await FailureOf(feature.UpgradeAsync));
        }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());
            await client.ExpectAsync("HTTP/1.1 200 OK");
        }

        var refused = Assert.IsType<InvalidOperationException>(await attempt.Task.OrTimeout());
        Assert.Equal(KestrelMessages.Get("CannotUpgradeNonUpgradableRequest"), refused.Message);
    }

    [Fact]
    public async Task RejectsUpgradeWhenLimitReached()
    {
        const int limit = 10;
        var refusal = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                var feature = UpgradeFeature(context);
                if (!feature.IsUpgradableRequest)
                {
                    return;
                }

                try
                {
                    await feature.UpgradeAsync();
                }
                catch (InvalidOperationException ex)
                {
                    // Over the limit the upgrade is refused and the request goes on as a plain one (200).
                    refusal.TrySetResult(ex);
                    return;
                }

                await UntilRequestAborted(context);
            },
            new ServerSetup { Limits = limits => limits.MaxConcurrentUpgradedConnections = limit }))
        {
            for (var i = 0; i < limit; i++)
            {
                var upgraded = await server.ConnectAsync();
                await upgraded.SendAsync(Http1.Get(connection: "Upgrade, keep-alive"));
                await upgraded.ExpectAsync("HTTP/1.1 101");
            }

            using var overLimit = await server.ConnectAsync();
            await overLimit.SendAsync(Http1.Get(connection: "Upgrade, keep-alive"));
            await overLimit.ExpectAsync("HTTP/1.1 200");
        }

        Assert.Equal(KestrelMessages.Get("UpgradedConnectionLimitReached"), (await refusal.Task.OrTimeout()).Message);
    }

    [Fact]
    public async Task DoesNotThrowOnFin()
    {
        // The client's FIN ends the upgraded stream like an end of file: the app's copy completes without an exception.
        var app = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(context => ReportTo(app, async () =>
        {
            var upgraded = await UpgradeFeature(context).UpgradeAsync();
            await upgraded.CopyToAsync(Stream.Null);
        }));

        using (var client = await server.ConnectAsync())
        {
            await client.SendAsync(Http1.Get(connection: "Upgrade"));
            await client.ExpectAsync(Http1.SwitchingProtocols());
        }

        await app.Task.OrTimeout();
    }

    private static IHttpUpgradeFeature UpgradeFeature(HttpContext context) => context.Features.GetRequiredFeature<IHttpUpgradeFeature>();
}

public sealed class UpgradeTestsOnSockets : UpgradeTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class UpgradeTestsOnReusePort : UpgradeTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class UpgradeTestsOnThunderingHerd : UpgradeTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class UpgradeTestsOnSerialized : UpgradeTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class UpgradeTestsOnSocketsInline : UpgradeTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class UpgradeTestsOnReusePortInline : UpgradeTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
