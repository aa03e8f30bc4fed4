// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/RequestTests.cs, same names, written for this
// harness; each runs on all four transports.
// Differs from upstream's cases:
// - Real clock: Kestrel's Date header is matched by its shape (Http1.AnyDate), not compared with a mock clock.
// - LargeUpload: only the 10 MB row; the 2 GB row dropped for CI time.
// - FinOnError rows not here (AbortingTheConnection(fin: true), ServerCanAbortConnectionAfterUnobservedClose(…,
//   fin: true)): FinOnError is a process-wide switch, so it cannot be turned on for one host of a shared test process;
//   Connections/AbortTests.cs covers it in child processes. The fin parameter stays, so the remaining rows keep their
//   names.
// - Transport events (ConnectionReadFin, ConnectionReset, ConnectionPause, ConnectionWriteRst) are awaited by event
//   name through TransportEvents, so the same case works on Kestrel's socket transport and on the event loops.
// - Every wait is bounded by Deadline.Default (30 s); upstream's shorter semaphore waits (2.5 s) would flake on two
//   shared cores. Hosts are built by RunningServer (one endpoint on port 0) rather than UseUrls.
// - RemoteIPv6Address is a plain [Fact]: Linux CI always has ::1.
// - AppCanHandleClientAbortingConnectionMidRequest is quarantined upstream; here it is an ordinary case.
// Dropped: nothing beyond the rows above.

using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class RequestTests : TransportTestBase
{
    /// <summary>The rows of the connection-middleware theories: the plain endpoint, and one behind forwarding pipes.</summary>
    public static TheoryData<string> EndpointRows => ["Loopback", "PassThrough"];

    /// <summary>When a disconnect happens, for the "…IsLoggedAsDebug" cases.</summary>
    private enum Moment
    {
        BeforeAnyRequest,
        BetweenRequests,
        DuringRequest,
    }

    [Theory]
    [InlineData(10 * 1024 * 1024, true)]
    public async Task LargeUpload(long contentLength, bool checkBytes)
    {
        // The body is made of 1 MB blocks in which each byte is its offset modulo 256; the app checks every byte it
        // reads against that pattern and answers with the count, or with the first offset that differs.
        const int blockSize = 1024 * 1024;
        Assert.Equal(0, contentLength % blockSize);
        var pattern = new byte[blockSize + 256];
        for (var i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)i;
        }

        await using var server = await StartServerAsync(
            async context =>
            {
                var block = new byte[blockSize];
                long total = 0;
                long? firstWrong = null;
                int count;
                while ((count = await context.Request.Body.ReadAsync(block)) > 0)
                {
                    if (checkBytes && firstWrong is null)
                    {
                        var matching = block.AsSpan(0, count).CommonPrefixLength(pattern.AsSpan((int)(total % 256), count));
                        firstWrong = matching < count ? total + matching : null;
                    }

                    total += count;
                }

                await context.Response.WriteAsync(firstWrong is null ? $"bytesRead: {total}" : $"wrong byte at offset {firstWrong}");
            },
            new ServerSetup
            {
                Limits = limits =>
                {
                    limits.MaxRequestBodySize = contentLength;
                    limits.MinRequestBodyDataRate = null;
                },
            });

        using var client = await server.ConnectAsync();
        await client.Stream.WriteAsync(Encoding.ASCII.GetBytes($"POST / HTTP/1.1\r\nHost: \r\nContent-Length: {contentLength}\r\n\r\n")).OrTimeout();
        var block = checkBytes ? pattern.AsMemory(0, blockSize) : new byte[blockSize];
        for (long sent = 0; sent < contentLength; sent += blockSize)
        {
            await client.Stream.WriteAsync(block).OrTimeout();
        }

        var response = await client.ReadUntilAsync($"bytesRead: {contentLength}", "wrong byte at offset");
        Assert.Contains($"bytesRead: {contentLength}", response, StringComparison.Ordinal);
    }

    [Fact]
    public Task RemoteIPv4Address() => AssertAppSeesRemoteAddress(IPAddress.Loopback, "127.0.0.1");

    [Fact]
    public Task RemoteIPv6Address() => AssertAppSeesRemoteAddress(IPAddress.IPv6Loopback, "::1");

    [Fact]
    public async Task DoesNotHangOnConnectionCloseRequest()
    {
        await using var server = await StartServerAsync(context => context.Response.WriteAsync("hello, world"));
        using var http = new HttpClient();
        http.DefaultRequestHeaders.ConnectionClose = true;

        using var response = await http.GetAsync(server.BaseUri).OrTimeout();
        response.EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task CanHandleMultipleConcurrentRequests()
    {
        // The first request only finishes once the second has reached the app: both must be in flight at once.
        var arrivals = 0;
        var secondArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(async _ =>
        {
            if (Interlocked.Increment(ref arrivals) == 1)
            {
                await secondArrived.Task.OrTimeout();
            }
            else
            {
                secondArrived.TrySetResult();
            }
        });

        using var first = await server.ConnectAsync();
        using var second = await server.ConnectAsync();
        await first.SendAsync(Http1.Get());
        await second.SendAsync(Http1.Get());
        await first.ExpectAsync(Http1.EmptyOk());
        await second.ExpectAsync(Http1.EmptyOk());
    }

    [Fact]
    public Task ConnectionClosedPriorToRequestIsLoggedAsDebug() => AssertDisconnectLoggedAsDebug(Moment.BeforeAnyRequest, reset: false);

    [Fact]
    public Task ConnectionResetPriorToRequestIsLoggedAsDebug() => AssertDisconnectLoggedAsDebug(Moment.BeforeAnyRequest, reset: true);

    [Fact]
    public Task ConnectionClosedBetweenRequestsIsLoggedAsDebug() => AssertDisconnectLoggedAsDebug(Moment.BetweenRequests, reset: false);

    [Fact]
    public Task ConnectionResetBetweenRequestsIsLoggedAsDebug() => AssertDisconnectLoggedAsDebug(Moment.BetweenRequests, reset: true);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public Task ConnectionClosedOrResetMidRequestIsLoggedAsDebug(bool close) => AssertDisconnectLoggedAsDebug(Moment.DuringRequest, reset: !close);

    [Fact]
    public async Task ThrowsOnReadAfterConnectionError()
    {
        var appStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clientGone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var readFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(async context =>
        {
            appStarted.TrySetResult();
            await clientGone.Task.OrTimeout();
            readFailure.TrySetResult(await FailureOf(() => context.Request.Body.ReadExactlyAsync(new byte[1]).AsTask()));
        });

        // The request announces a one-byte body that never comes; the client resets while the app waits.
        var client = await server.ConnectAsync();
        await client.SendAsync("GET / HTTP/1.1", "Host:", "Content-Length: 1", "", "");
        await appStarted.Task.OrTimeout();
        client.Reset();
        clientGone.TrySetResult();

        Assert.IsAssignableFrom<ConnectionResetException>(await readFailure.Task.OrTimeout());
    }

    [Fact]
    public async Task RequestAbortedTokenFiredOnClientFIN()
    {
        using var metrics = new KestrelMetricsCapture();
        var appStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var abortSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                using var registration = context.RequestAborted.Register(() => abortSeen.TrySetResult());
                appStarted.TrySetResult();
                await abortSeen.Task.OrTimeout();
            },
            new ServerSetup { Meters = metrics }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());
            await appStarted.Task.OrTimeout();
            client.ShutdownSend();
            await abortSeen.Task.OrTimeout();
        }

        // A client's FIN ends the connection normally: no error.type on its duration.
        var duration = Assert.Single(metrics.On(KestrelMetricsCapture.ConnectionDuration));
        Assert.Null(duration.ErrorType);
    }

    [Fact]
    public async Task RequestAbortedTokenUnchangedOnAbort()
    {
        var tokens = new TaskCompletionSource<(CancellationToken Before, CancellationToken After)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(async context =>
        {
            var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var before = context.RequestAborted;
            using var registration = before.Register(() => fired.TrySetResult());
            context.Abort();

            // The abort is not inline: read the token again only once it has fired.
            await fired.Task.OrTimeout();
            tokens.TrySetResult((before, context.RequestAborted));
        });

        using var client = await server.ConnectAsync();
        await client.SendAsync(Http1.Get());
        var (beforeAbort, afterAbort) = await tokens.Task.OrTimeout();
        Assert.Equal(beforeAbort, afterAbort);
    }

    [Theory]
    [InlineData(false)]
    public async Task AbortingTheConnection(bool fin)
    {
        using var metrics = new KestrelMetricsCapture();
        await using (var server = await StartServerAsync(
            context =>
            {
                context.Abort();
                return Task.CompletedTask;
            },
            new ServerSetup { Meters = metrics }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());
            var receive = client.Socket.ReceiveAsync(new byte[64].AsMemory()).AsTask().OrTimeout();
            if (fin)
            {
                Assert.Equal(0, await receive);
            }
            else
            {
                await Assert.ThrowsAsync<SocketException>(() => receive);
            }
        }

        var duration = Assert.Single(metrics.On(KestrelMetricsCapture.ConnectionDuration));
        Assert.Equal("aborted_by_app", duration.ErrorType);
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task ConnectionClosedTokenFiresOnClientFIN(string listenOptionsName)
    {
        var appStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connectionClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(
            context =>
            {
                OnConnectionClosed(context, connectionClosed);
                appStarted.TrySetResult();
                return Task.CompletedTask;
            },
            Endpoint(listenOptionsName));

        using var client = await server.ConnectAsync();
        await client.SendAsync(Http1.Get());
        await appStarted.Task.OrTimeout();
        client.ShutdownSend();
        await connectionClosed.Task.OrTimeout();
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task ConnectionClosedTokenFiresOnServerFIN(string listenOptionsName)
    {
        var connectionClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(
            context =>
            {
                OnConnectionClosed(context, connectionClosed);
                return Task.CompletedTask;
            },
            Endpoint(listenOptionsName));

        using var client = await server.ConnectAsync();
        await client.SendAsync(Http1.Get(connection: "close"));
        await connectionClosed.Task.OrTimeout();
        await client.ExpectThenEndAsync("HTTP/1.1 200 OK", "Content-Length: 0", "Connection: close", Http1.AnyDate, "", "");
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task ConnectionClosedTokenFiresOnServerAbort(string listenOptionsName)
    {
        var connectionClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(
            context =>
            {
                OnConnectionClosed(context, connectionClosed);
                context.Abort();
                return Task.CompletedTask;
            },
            Endpoint(listenOptionsName));

        using var client = await server.ConnectAsync();
        await client.SendAsync(Http1.Get());
        await connectionClosed.Task.OrTimeout();

        // An abort may reach the client as a FIN or as a reset; either way nothing is sent.
        await client.ExpectClosedAsync();
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task RequestsCanBeAbortedMidRead(string listenOptionsName)
    {
        // Request 1 is served in full; request 2 announces a body, the app starts reading it and aborts.
        var requestCount = 0;
        var abortedRequest = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var readFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                var request = Interlocked.Increment(ref requestCount);
                context.RequestAborted.Register(() => abortedRequest.TrySetResult(request));
                if (request == 1)
                {
                    context.Response.ContentLength = 5;
                    await context.Response.WriteAsync("World");
                    return;
                }

                var reading = context.Request.Body.CopyToAsync(Stream.Null);
                context.Abort();
                var failure = await FailureOf(() => reading);
                readFailure.TrySetResult(failure);
                await abortedRequest.Task.OrTimeout();
                if (failure is not null)
                {
                    throw failure;
                }
            },
            Endpoint(listenOptionsName)))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Post(5, "Hello"));
            await client.ExpectAsync("HTTP/1.1 200 OK", "Content-Length: 5", Http1.AnyDate, "", "World");

            await client.SendAsync(Http1.Post(5));
            await client.ExpectClosedAsync();
        }

        Assert.IsType<TaskCanceledException>(await readFailure.Task.OrTimeout());

        // Only the aborted request's token fired, and Kestrel logged the app's abort once.
        Assert.Equal(2, await abortedRequest.Task.OrTimeout());
        AssertLoggedOnce(TransportEvents.Kestrel("ApplicationAbortedConnection"), "the application's abort");
    }

    [Theory]
    [InlineData("Loopback", false)]
    [InlineData("PassThrough", false)]
    public async Task ServerCanAbortConnectionAfterUnobservedClose(string listenOptionsName, bool fin)
    {
        // With 4 KB of request buffer, a 32 KB body makes the transport stop reading (ConnectionPause); the client then
        // goes away while nobody reads, and the app aborts a connection whose close the server has not seen yet.
        const int bufferLimit = 4096;
        var clientGone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var appDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var setup = new ServerSetup
        {
            Endpoint = Endpoint(listenOptionsName).Endpoint,
            Limits = limits =>
            {
                limits.MaxRequestBufferSize = bufferLimit;
                limits.MaxRequestLineSize = bufferLimit;
                limits.MaxRequestHeadersTotalSize = bufferLimit;
            },
        };

        await using (var server = await StartServerAsync(
            async context =>
            {
                await clientGone.Task.OrTimeout();
                context.Abort();
                await LoggedAsync(fin ? TransportEvent.ConnectionWriteFin : TransportEvent.ConnectionWriteRst);
                appDone.TrySetResult();
            },
            setup))
        {
            var body = new byte[bufferLimit * 8];
            using (var client = await server.ConnectAsync())
            {
                await client.SendAsync(Http1.Post(body.Length));
                _ = client.Stream.WriteAsync(body).AsTask();
                await LoggedAsync(TransportEvent.ConnectionPause);
            }

            clientGone.TrySetResult();
            await appDone.Task.OrTimeout();
        }

        AssertLoggedOnce(TransportEvents.Kestrel("ConnectionStop"), "the connection's stop");
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task AppCanHandleClientAbortingConnectionMidRequest(string listenOptionsName)
    {
        var appStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var readFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var half = new byte[4096];
        await using (var server = await StartServerAsync(
            async context =>
            {
                appStarted.TrySetResult();
                var failure = await FailureOf(() => context.Request.Body.CopyToAsync(Stream.Null));
                readFailure.TrySetResult(failure);
                if (failure is not null)
                {
                    throw failure;
                }
            },
            Endpoint(listenOptionsName)))
        {
            // Half of the announced body, then a reset.
            var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Post(half.Length * 2));
            await appStarted.Task.OrTimeout();
            await client.Stream.WriteAsync(half).OrTimeout();
            client.Reset();

            Assert.IsAssignableFrom<IOException>(await readFailure.Task.OrTimeout());
        }

        AssertLoggedOnce(TransportEvents.Kestrel("ConnectionStop"), "the connection's stop");
    }

    /// <summary>
    /// A client disconnects (FIN or RST) at <paramref name="moment"/>; the transport logs it, and nothing from Kestrel
    /// or the transport is logged above Debug. The transport's event is awaited before the server stops: stopping first
    /// would abort the connection before the disconnect is read, and nothing would be logged.
    /// </summary>
    private async Task AssertDisconnectLoggedAsDebug(Moment moment, bool reset)
    {
        var requestArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseApp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(async _ =>
        {
            requestArrived.TrySetResult();
            if (moment == Moment.DuringRequest)
            {
                await releaseApp.Task.OrTimeout();
            }
        }))
        {
            var client = await server.ConnectAsync();
            switch (moment)
            {
                case Moment.BeforeAnyRequest:
                    await LoggedAsync(TransportEvents.Kestrel("ConnectionStart"));
                    break;
                case Moment.BetweenRequests:
                    // The whole response is read first, so no write of the server's can fail after the disconnect.
                    await client.SendAsync(Http1.Get());
                    await client.ExpectAsync(Http1.EmptyOk());
                    break;
                case Moment.DuringRequest:
                    await client.SendAsync(Http1.Get());
                    await requestArrived.Task.OrTimeout();
                    break;
            }

            if (reset)
            {
                client.Reset();
                await LoggedAsync(TransportEvent.ConnectionReset);
            }
            else
            {
                client.ShutdownSend();
                await LoggedAsync(TransportEvent.ConnectionReadFin);
                if (moment != Moment.DuringRequest)
                {
                    await client.ExpectThenEndAsync();
                }
            }

            releaseApp.TrySetResult();
        }

        AssertNothingAboveDebug();
    }

    private async Task AssertAppSeesRemoteAddress(IPAddress listenOn, string expectedRemote)
    {
        await using var server = await StartServerAsync(
            context => context.Response.WriteAsync(JsonSerializer.Serialize(new ConnectionFacts(
                context.Connection.RemoteIpAddress?.ToString(),
                context.Connection.RemotePort,
                context.Connection.LocalIpAddress?.ToString(),
                context.Connection.LocalPort))),
            new ServerSetup { Address = listenOn });

        using var http = new HttpClient();
        using var response = await http.GetAsync(server.BaseUri).OrTimeout();
        response.EnsureSuccessStatusCode();
        var facts = JsonSerializer.Deserialize<ConnectionFacts>(await response.Content.ReadAsStringAsync().OrTimeout());
        Assert.NotNull(facts);
        Assert.Equal(expectedRemote, facts.RemoteIp);
        Assert.NotEqual(0, facts.RemotePort);
    }

    private static ServerSetup Endpoint(string listenOptionsName) => listenOptionsName switch
    {
        "Loopback" => new ServerSetup(),
        "PassThrough" => new ServerSetup { Endpoint = listen => listen.UseForwardingPipes() },
        _ => throw new ArgumentOutOfRangeException(nameof(listenOptionsName), listenOptionsName, "Not a row of EndpointRows."),
    };

    private static void OnConnectionClosed(HttpContext context, TaskCompletionSource closed) =>
        context.Features.GetRequiredFeature<IConnectionLifetimeFeature>().ConnectionClosed.Register(() => closed.TrySetResult());

    private sealed record ConnectionFacts(string? RemoteIp, int RemotePort, string? LocalIp, int LocalPort);
}

public sealed class RequestTestsOnSockets : RequestTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class RequestTestsOnReusePort : RequestTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class RequestTestsOnThunderingHerd : RequestTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class RequestTestsOnSerialized : RequestTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class RequestTestsOnSocketsInline : RequestTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class RequestTestsOnReusePortInline : RequestTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
