// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/Http2/ShutdownTests.cs, same names, written for
// this harness; each runs on all four transports, HTTP/2 over TLS (ALPN h2).
// Differs from upstream's cases:
// - Plain facts: upstream runs them only where TLS offers ALPN (and not before Windows 10); on Linux it always does.
// - The server certificate is the runtime-made LocalhostCertificate; the client (TlsClient.Http2) accepts that
//   certificate only, pinned by its key, where upstream's accepts any. Upstream sets the client's keep-alive ping delay
//   to "never", which is the handler's default; here it is left at the default.
// - Upstream fails these cases on an ungraceful shutdown (NotAllConnectionsClosedGracefully/NotAllConnectionsAborted);
//   here FailOnUngracefulShutdown does, and GracefulTurnsAbortiveIfRequestsDoNotFinish turns it off, as upstream does.
// - Kestrel's log entries are matched by category and event name (Http2ConnectionClosing, Http2ConnectionClosed,
//   NotAllConnectionsClosedGracefully), "the last processed stream ID was 1" by the end of Http2ConnectionClosed's
//   message, a finished request by hosting's "Request finished " entry (which has no event name), and the transport's
//   ConnectionReadFin/ConnectionWriteFin through TransportEvents.
// - GracefulTurnsAbortiveIfRequestsDoNotFinish: that the request did not finish is checked as no "Request finished "
//   entry by the time the abortive stop has closed the connection (before the app is released: once released, the app
//   returns and hosting logs the entry), and as the client's request failing. Upstream looks at the end for the text
//   "Request finished in", which today's hosting no longer writes (it writes "Request finished HTTP/2 GET …"), so its
//   check cannot fail.
// - The graceful stop's patience is a token the test cancels (RunningServer.StopAsync(CancellationToken)); upstream's
//   diagnostic memory pool for the abortive case is internal to Kestrel and not used (Kestrel's default pool checks
//   nothing).
// - Every wait is bounded (Deadline.Default), the client's requests included.
// Dropped: none.

using System.Net.Http;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class ShutdownTests : TransportTestBase
{
    private const string Hello = "hello world HTTP/2";

    private static readonly Func<LogEntry, bool> Http2ConnectionClosing = TransportEvents.Named(TransportEvents.KestrelHttp2Category, "Http2ConnectionClosing");

    private static readonly Func<LogEntry, bool> Http2ConnectionClosed = TransportEvents.Named(TransportEvents.KestrelHttp2Category, "Http2ConnectionClosed");

    protected ShutdownTests() => FailOnUngracefulShutdown = true;

    [Fact]
    public async Task ConnectionClosedWithoutActiveRequestsOrGoAwayFIN()
    {
        using var certificate = LocalhostCertificate.Create();
        await using var server = await StartServerAsync(SayHello, Http2OverTls(certificate));

        using (var client = TlsClient.Http2())
        {
            // After its first responses HttpClient pings the server a few times to size its receive window (four
            // pings in all). Five requests let those pings finish: a ping the server acknowledges while the client
            // closes would make the close a reset instead of a FIN.
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(Hello, await client.GetStringAsync(server.HttpsUri).OrTimeout());
            }
        }

        // Disposing the client closed its connection without a GOAWAY: the server reads a FIN, answers with its own and
        // closes the HTTP/2 connection.
        await LoggedAsync(TransportEvent.ConnectionReadFin);
        await LoggedAsync(TransportEvent.ConnectionWriteFin);
        await LoggedAsync(Http2ConnectionClosed);
        await server.StopAsync();
    }

    [Fact]
    public async Task GracefulShutdownWaitsForRequestsToFinish()
    {
        var requestStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseRequest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(HelloWhenReleased(requestStarted, releaseRequest), Http2OverTls(certificate)))
        {
            using var client = TlsClient.Http2();
            var request = client.GetStringAsync(server.HttpsUri);
            Assert.False(request.IsCompleted);
            await requestStarted.Task.OrTimeout();

            // The stop sends a GOAWAY and waits for the running request, which then completes normally.
            var stopping = server.StopAsync();
            await LoggedAsync(Http2ConnectionClosing);
            releaseRequest.TrySetResult();

            Assert.Equal(Hello, await request.OrTimeout());
            await stopping;
        }

        Assert.Contains(Log.Entries, RequestFinished);
        Assert.Contains(Log.Entries, e => Http2ConnectionClosing(e));
        Assert.Contains(Log.Entries, ClosedAfterStreamOne);
    }

    [Fact]
    public async Task GracefulTurnsAbortiveIfRequestsDoNotFinish()
    {
        // This stop is meant to give up on the request.
        FailOnUngracefulShutdown = false;
        var requestStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseRequest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(HelloWhenReleased(requestStarted, releaseRequest), Http2OverTls(certificate)))
        {
            using var client = TlsClient.Http2();
            var request = client.GetStringAsync(server.HttpsUri);
            Assert.False(request.IsCompleted);
            await requestStarted.Task.OrTimeout();

            // Run out of patience only once the graceful part has begun: cancelled earlier, Kestrel could skip it and
            // never log the connection closing.
            using var patience = new CancellationTokenSource();
            var stopping = server.StopAsync(patience.Token);
            await LoggedAsync(Http2ConnectionClosing);
            await patience.CancelAsync();

            // The connection logs its close from its own thread, possibly after the stop has returned: wait for it.
            await LoggedAsync(ClosedAfterStreamOne);
            Assert.DoesNotContain(Log.Entries, RequestFinished);

            releaseRequest.TrySetResult();
            await stopping;

            // The connection is gone: the client never gets the response the released app writes.
            await Assert.ThrowsAsync<HttpRequestException>(() => request).OrTimeout();
        }

        Assert.Contains(Log.Entries, e => Http2ConnectionClosing(e));
        Assert.Contains(Log.Entries, ClosedAfterStreamOne);
        Assert.Contains(Log.Entries, e => TransportEvents.Kestrel("NotAllConnectionsClosedGracefully")(e));
    }

    private static Task SayHello(HttpContext context) => context.Response.WriteAsync("hello world " + context.Request.Protocol);

    /// <summary>An app that says hello only once <paramref name="release"/> completes (bounded).</summary>
    private static RequestDelegate HelloWhenReleased(TaskCompletionSource started, TaskCompletionSource release) => async context =>
    {
        started.TrySetResult();
        await release.Task.OrTimeout();
        await SayHello(context);
    };

    /// <summary>Hosting's entry for a request that ended ("Request finished HTTP/2 GET … - 200 …"; the event has no name).</summary>
    private static bool RequestFinished(LogEntry entry) =>
        entry.Category == TransportEvents.HostingCategory && entry.Message.StartsWith("Request finished ", StringComparison.Ordinal);

    /// <summary>Kestrel's Http2ConnectionClosed for a connection whose last stream was the first request's (ID 1).</summary>
    private static bool ClosedAfterStreamOne(LogEntry entry) =>
        Http2ConnectionClosed(entry) && entry.Message.EndsWith("The last processed stream ID was 1.", StringComparison.Ordinal);

    private static ServerSetup Http2OverTls(X509Certificate2 certificate) => new()
    {
        Endpoint = listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            listen.UseHttps(certificate);
        },
    };
}

public sealed class ShutdownTestsOnSockets : ShutdownTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class ShutdownTestsOnReusePort : ShutdownTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class ShutdownTestsOnThunderingHerd : ShutdownTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class ShutdownTestsOnSerialized : ShutdownTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class ShutdownTestsOnSocketsInline : ShutdownTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class ShutdownTestsOnReusePortInline : ShutdownTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
