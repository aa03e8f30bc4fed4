// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/ResponseTests.cs, same names, written for this
// harness; each runs on all four transports.
// Differs from upstream's cases:
// - Real clock: Kestrel's Date header is matched by its shape (Http1.AnyDate). The slow readers read exactly the bytes
//   of the response, frame by frame (status and header lines, chunk size, chunk data, last chunk), where upstream
//   counts bytes up to a total it measured with a constant Date header and a reader that had read ahead.
// - Slow readers shortened for CI time, keeping what they test (reading one write takes twice the 2 s grace period at
//   the client's rate): ConnectionNotClosedWhenClientSatisfiesMinimumDataRateGivenLargeResponseChunks and
//   ClientCanReceiveFullConnectionCloseResponseWithoutErrorAtALowDataRate write one 8 MB chunk instead of four, and
//   ConnectionNotClosedWhenClientSatisfiesMinimumDataRateGivenLargeResponseHeaders sends one response with 64 MB of
//   headers instead of four: about 4 s of reading each instead of 16 s.
// - The abort cases (ConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate, its Https variant and
//   ConnectionClosedWhenBothRequestAndResponseExperienceBackPressure) require 4 MB/s instead of 1 MB/s, grace 2 s
//   kept: what the client's socket buffers take in before the writes stall (about 5 MB here) counts toward the rate,
//   so at 1 MB/s the abort came after 7-8 s, at 4 MB/s after about 3 s. The abort still comes from a write stalled
//   past its deadline.
// - ClientAbortingConnectionImmediatelyIsNotLoggedHigherThanDebug waits (bounded) until Kestrel has measured the
//   duration of all 10 connections before the server stops; upstream stops right after the client's loop and waits
//   for one measurement. The loop's connect, send and reset take a few milliseconds, often before the accept loop has
//   run, and a stop drops what is still in the accept backlog, so upstream's case could end with no connection served
//   (it is quarantined there). Waiting for all 10 also makes the log checks cover every reset.
// - FinOnError rows not here (ConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate, its Https variant and
//   ConnectionClosedWhenBothRequestAndResponseExperienceBackPressure, each with fin: true): FinOnError is a process-wide
//   switch, so it cannot be turned on for one host of a shared test process. The fin parameter stays, so the remaining
//   rows keep their names; without FinOnError the abort is a reset (ConnectionWriteRst).
// - Transport events (ConnectionPause, ConnectionReset, ConnectionReadFin, ConnectionWriteRst) are awaited by event name
//   through TransportEvents, so the same case works on Kestrel's socket transport and on the event loops; "not logged
//   above Debug" in AppCanHandleClientAbortingConnectionMidResponse covers Kestrel's connection category as well.
// - Upstream fails these cases on an ungraceful shutdown; here FailOnUngracefulShutdown does.
// - HttpsConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate: the server certificate is the runtime-made
//   LocalhostCertificate, which the client pins instead of accepting any; its TLS protocols are the OS defaults.
//   Quarantined upstream, like ClientAbortingConnectionImmediatelyIsNotLoggedHigherThanDebug; both are ordinary cases
//   here, except that the app's writes may end without an exception when the abort comes between two of them (seen
//   once in CI on the Serialized strategy; see the case).
// - IgnoreNullHeaderValues: the app adds the header with TryAdd (the dictionary's Add on a response that has no such
//   header yet) rather than IHeaderDictionary.Add, which the analyzers reject (ASP0019).
// - The apps hand the exception their writes ended with (or none) to the test, which asserts its type, and an app's
//   failed assertion fails the case with its own message (ReportTo); every wait is bounded (Deadline.Default), the slow
//   readers' reads included; upstream's diagnostic log lines in the data-rate case are left out.
// Dropped: nothing beyond the rows above.

using System.Diagnostics;
using System.Net.Http;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class ResponseTests : TransportTestBase
{
    /// <summary>The rate the abort cases require of the client (upstream: 1 MB/s; see the file comment).</summary>
    private const int AbortRate = 4 * 1024 * 1024;

    /// <summary>A rate any reader satisfies: the slow-reader cases check that large writes are not held against it.</summary>
    private const int LowRate = 240;

    /// <summary>One chunk of the slow-reader cases: 8 MB, written at once.</summary>
    private const int LargeChunk = 8 * 1024 * 1024;

    private static readonly Func<LogEntry, bool> ResponseRateNotSatisfied =
        TransportEvents.Named(TransportEvents.KestrelBadRequestsCategory, "ResponseMinimumDataRateNotSatisfied");

    private static readonly Func<LogEntry, bool> ConnectionStop = TransportEvents.Kestrel("ConnectionStop");

    protected ResponseTests() => FailOnUngracefulShutdown = true;

    /// <summary>The rows of the connection-middleware theories: the plain endpoint, and one behind forwarding pipes.</summary>
    public static TheoryData<string> EndpointRows => ["Loopback", "PassThrough"];

    /// <summary>(header name, value the app adds, the value the client sees or null for no header at all).</summary>
    public static TheoryData<string, StringValues, string?> NullHeaderData => new()
    {
        // A header Kestrel does not know…
        { "NullString", (string?)null, null },
        { "EmptyString", "", "" },
        { "NullStringArray", new string?[] { null }, null },
        { "EmptyStringArray", new StringValues([""]), "" },
        { "MixedStringArray", new string?[] { null, "" }, "" },

        // …and one it does.
        { "Location", (string?)null, null },
        { "Location", "", "" },
        { "Location", new string?[] { null }, null },
        { "Location", new StringValues([""]), "" },
        { "Location", new string?[] { null, "" }, "" },
    };

    [Fact]
    public async Task LargeDownload()
    {
        // 1 MB in 1,024 writes of the same 1 KB block, in which each byte is its offset modulo 256.
        const int blockSize = 1024;
        const int blocks = 1024;
        await using var server = await StartServerAsync(async context =>
        {
            var block = new byte[blockSize];
            for (var i = 0; i < block.Length; i++)
            {
                block[i] = (byte)i;
            }

            context.Response.ContentLength = blockSize * blocks;
            for (var i = 0; i < blocks; i++)
            {
                await context.Response.BodyWriter.WriteAsync(block);
            }
        });

        using var http = new HttpClient();
        using var response = await http.GetAsync(server.BaseUri).OrTimeout();
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync().OrTimeout();
        var buffer = new byte[blockSize];
        var offset = 0L;
        int count;
        while ((count = await body.ReadAsync(buffer).OrTimeout()) > 0)
        {
            for (var i = 0; i < count; i++, offset++)
            {
                Assert.Equal((byte)offset, buffer[i]);
            }
        }

        Assert.Equal(blockSize * blocks, offset);
    }

    [Theory]
    [MemberData(nameof(NullHeaderData))]
    public async Task IgnoreNullHeaderValues(string headerName, StringValues headerValue, string? expectedValue)
    {
        var added = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(context =>
        {
            added.TrySetResult(context.Response.Headers.TryAdd(headerName, headerValue));
            return context.Response.WriteAsync("");
        });

        using var http = new HttpClient();
        using var response = await http.GetAsync(server.BaseUri).OrTimeout();
        response.EnsureSuccessStatusCode();
        Assert.True(await added.Task.OrTimeout());

        if (expectedValue is null)
        {
            Assert.False(response.Headers.Contains(headerName));
        }
        else
        {
            Assert.True(response.Headers.Contains(headerName));
            Assert.Equal(expectedValue, Assert.Single(response.Headers.GetValues(headerName)));
        }
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task WriteAfterConnectionCloseNoops(string listenOptionsName)
    {
        // The app writes its response only after the client has closed the connection: the write does nothing, and
        // does not fail.
        var requestStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connectionClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var app = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(
            context => ReportTo(app, async () =>
            {
                requestStarted.TrySetResult();
                await connectionClosed.Task.OrTimeout();
                context.Response.ContentLength = 12;
                await context.Response.WriteAsync("hello, world");
            }),
            Setup(listenOptionsName));

        using (var client = await server.ConnectAsync())
        {
            await client.SendAsync(Http1.Get());
            await requestStarted.Task.OrTimeout();
            client.ShutdownSend();
            await client.ExpectClosedAsync();
        }

        connectionClosed.TrySetResult();
        await app.Task.OrTimeout();
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task ThrowsOnWriteWithRequestAbortedTokenAfterRequestIsAborted(string listenOptionsName)
    {
        // Once the client is gone, a write given RequestAborted fails as cancelled; it is larger than the output buffer
        // Kestrel completes writes into at once (64 KB), so it cannot finish without the connection.
        var large = new string('a', (64 * 1024) + 1);
        using var metrics = new KestrelMetricsCapture();
        var requestStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writeFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                requestStarted.TrySetResult();
                var aborted = context.Features.GetRequiredFeature<IHttpRequestLifetimeFeature>().RequestAborted;
                aborted.Register(() => requestAborted.TrySetResult());
                await requestAborted.Task.OrTimeout();

                var failure = await FailureOf(() => context.Response.WriteAsync(large, aborted));
                writeFailure.TrySetResult(failure);
                if (failure is not null)
                {
                    throw failure;
                }
            },
            Setup(listenOptionsName, metrics)))
        {
            using (var client = await server.ConnectAsync())
            {
                await client.SendAsync(Http1.Post(0));
                await requestStarted.Task.OrTimeout();
            }

            Assert.IsAssignableFrom<OperationCanceledException>(await writeFailure.Task.OrTimeout());
            await requestAborted.Task.OrTimeout();
        }

        // The client closed the connection: a normal end, no error.type.
        var duration = Assert.Single(metrics.On(KestrelMetricsCapture.ConnectionDuration));
        Assert.Null(duration.ErrorType);
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task WritingToConnectionAfterUnobservedCloseTriggersRequestAbortedToken(string listenOptionsName)
    {
        // With 4 KB of request buffer, a 32 KB body makes the transport stop reading (ConnectionPause); the client then
        // closes while nobody reads, so only the app's writes can find out that it is gone. They must then fail as
        // cancelled and fire RequestAborted.
        const int bufferLimit = 4096;
        var piece = new byte[bufferLimit * 8];
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clientGone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writeFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var setup = Setup(listenOptionsName, limits: limits =>
        {
            limits.MaxRequestBufferSize = bufferLimit;
            limits.MaxRequestLineSize = bufferLimit;
            limits.MaxRequestHeadersTotalSize = bufferLimit;
        });

        await using (var server = await StartServerAsync(
            async context =>
            {
                context.RequestAborted.Register(() => requestAborted.TrySetResult());
                await clientGone.Task.OrTimeout();

                var failure = await FailureOf(async () =>
                {
                    // A write every 10 ms, up to 1,000 of them.
                    for (var i = 0; i < 1000; i++)
                    {
                        await context.Response.BodyWriter.WriteAsync(piece, context.RequestAborted);
                        await Task.Delay(10);
                    }
                });
                writeFailure.TrySetResult(failure);
                await requestAborted.Task.OrTimeout();
                if (failure is not null)
                {
                    throw failure;
                }
            },
            setup))
        {
            using (var client = await server.ConnectAsync())
            {
                await client.SendAsync(Http1.Post(piece.Length));
                _ = client.Stream.WriteAsync(piece).AsTask();
                await LoggedAsync(TransportEvent.ConnectionPause);
            }

            clientGone.TrySetResult();
            Assert.IsAssignableFrom<OperationCanceledException>(await writeFailure.Task.OrTimeout());
        }

        AssertLoggedOnce(ConnectionStop, "the connection's stop");
        Assert.True(requestAborted.Task.IsCompleted);
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task AppCanHandleClientAbortingConnectionMidResponse(string listenOptionsName)
    {
        // The app writes 100 pieces of 64 KB, one every 10 ms; the client reads one buffer's worth and resets. The app's
        // later writes must not fail, and the reset is no error.
        const int pieceSize = 64 * 1024;
        const int pieces = 100;
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var app = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new byte[pieceSize];
        await using (var server = await StartServerAsync(
            context => ReportTo(app, async () =>
            {
                context.RequestAborted.Register(() => requestAborted.TrySetResult());
                var piece = new byte[pieceSize];
                for (var i = 0; i < pieces; i++)
                {
                    await context.Response.Body.WriteAsync(piece);
                    await Task.Delay(10);
                }

                await requestAborted.Task.OrTimeout();
            }),
            Setup(listenOptionsName)))
        {
            var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());
            _ = await client.Stream.ReadAsync(received).OrTimeout();
            client.Reset();

            // By the time RequestAborted fires the transport has logged the client's disconnect: a reset, or (Linux
            // sometimes sends a FIN despite SO_LINGER 0) a FIN.
            await requestAborted.Task.OrTimeout();
            var reset = TransportEvents.Transport(TransportEvent.ConnectionReset);
            var readFin = TransportEvents.Transport(TransportEvent.ConnectionReadFin);
            Assert.Contains(Log.Entries, e => reset(e) || readFin(e));

            await app.Task.OrTimeout();
        }

        AssertLoggedOnce(TransportEvents.Named(TransportEvents.KestrelConnectionsCategory, "ConnectionStop"), "the connection's stop");
        AssertNothingAboveDebug();
    }

    [Theory]
    [MemberData(nameof(EndpointRows))]
    public async Task ClientAbortingConnectionImmediatelyIsNotLoggedHigherThanDebug(string listenOptionsName)
    {
        // Ten clients each send a request and reset at once; the app may or may not see them.
        const int connections = 10;
        using var metrics = new KestrelMetricsCapture();
        var allServed = metrics.When(m => m.On(KestrelMetricsCapture.ConnectionDuration).Count >= connections);
        await using (var server = await StartServerAsync(_ => Task.CompletedTask, Setup(listenOptionsName, metrics)))
        {
            for (var i = 0; i < connections; i++)
            {
                var client = await server.ConnectAsync();
                await client.SendAsync(Http1.Get());
                client.Reset();
            }

            // Not upstream: stop only once Kestrel has served every connection (see the file comment).
            await allServed.OrTimeout();
        }

        // Kestrel's general category may log a bad request at Information: a reset can cut the request's headers short.
        var loud = Log.Entries.Where(e =>
            (TransportEvents.FromTransport(e) && e.Level > LogLevel.Debug && !TransportEvents.LoopHeld(e))
            || (e.Category == TransportEvents.KestrelCategory && e.Level > LogLevel.Information)).ToArray();
        Assert.True(loud.Length == 0, "Logged too loud:" + Environment.NewLine + string.Join(Environment.NewLine, loud.AsEnumerable()));

        Assert.Null(metrics.On(KestrelMetricsCapture.ConnectionDuration)[0].ErrorType);
    }

    [Theory]
    [InlineData(false)]
    public async Task ConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate(bool fin)
    {
        // The app writes a 256 MB response in 1 KB writes; the client never reads. Once the socket buffers are full the
        // writes stall, and Kestrel aborts the connection for reading too slowly.
        const int chunkSize = 1024;
        const int chunks = 256 * 1024;
        const long responseSize = (long)chunkSize * chunks;
        using var metrics = new KestrelMetricsCapture();
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writeFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                context.RequestAborted.Register(() => requestAborted.TrySetResult());
                context.Response.ContentLength = responseSize;
                var chunk = new byte[chunkSize];
                var failure = await FailureOf(async () =>
                {
                    for (var i = 0; i < chunks; i++)
                    {
                        await context.Response.BodyWriter.WriteAsync(chunk, context.RequestAborted);
                        await Task.Yield();
                    }
                });
                writeFailure.TrySetResult(failure);
                await requestAborted.Task.OrTimeout();
                if (failure is not null)
                {
                    throw failure;
                }
            },
            new ServerSetup { Meters = metrics, Limits = RequireRate(AbortRate) }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());

            await requestAborted.Task.OrTimeout();
            await AssertAbortedForRateAsync(fin);
            Assert.IsAssignableFrom<OperationCanceledException>(await writeFailure.Task.OrTimeout());
            await AssertCutShortAsync(client.Stream, responseSize);
        }

        var duration = Assert.Single(metrics.On(KestrelMetricsCapture.ConnectionDuration));
        Assert.Equal("min_response_data_rate", duration.ErrorType);
    }

    [Theory]
    [InlineData(false)]
    public async Task HttpsConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate(bool fin)
    {
        // As ConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate, over TLS.
        const int chunkSize = 1024;
        const int chunks = 256 * 1024;
        const long responseSize = (long)chunkSize * chunks;
        using var certificate = LocalhostCertificate.Create();
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writeFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                context.RequestAborted.Register(() => requestAborted.TrySetResult());
                context.Response.ContentLength = responseSize;
                var chunk = new byte[chunkSize];
                var failure = await FailureOf(async () =>
                {
                    for (var i = 0; i < chunks; i++)
                    {
                        await context.Response.BodyWriter.WriteAsync(chunk, context.RequestAborted);
                    }
                });
                writeFailure.TrySetResult(failure);
                await requestAborted.Task.OrTimeout();
                if (failure is not null)
                {
                    throw failure;
                }
            },
            new ServerSetup { Limits = RequireRate(AbortRate), Endpoint = listen => listen.UseHttps(certificate) }))
        {
            using var client = await server.ConnectAsync();
            await using var tls = await client.HandshakeAsync();
            await tls.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost:\r\n\r\n")).OrTimeout();

            await requestAborted.Task.OrTimeout();
            await AssertAbortedForRateAsync(fin);

            // Over TLS the app's writes reach the socket through the TLS middleware's pipe, and the rate abort can come
            // while the app is between two writes rather than waiting on one: Kestrel then completes the response's
            // writer, and every later write returns a completed FlushResult instead of throwing (Http1OutputProducer
            // checks for a completed writer before the token). Either way the response is cut short, asserted next.
            var failure = await writeFailure.Task.OrTimeout();
            Assert.True(failure is null or OperationCanceledException, $"the app's writes ended with {failure}");
            await AssertCutShortAsync(client.Stream, responseSize);
        }
    }

    [Theory]
    [InlineData(false)]
    public async Task ConnectionClosedWhenBothRequestAndResponseExperienceBackPressure(bool fin)
    {
        // The app echoes a 6.4 MB upload into its response; the client sends it (64 KB every 10 ms) and reads nothing.
        // Both directions back up, and Kestrel aborts the connection for reading the response too slowly.
        const int pieceSize = 64 * 1024;
        const int pieces = 100;
        const int bodySize = pieceSize * pieces;
        using var metrics = new KestrelMetricsCapture();
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var copyFailure = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                context.RequestAborted.Register(() => requestAborted.TrySetResult());
                var failure = await FailureOf(() => context.Request.Body.CopyToAsync(context.Response.Body));
                copyFailure.TrySetResult(failure);
                await requestAborted.Task.OrTimeout();
                if (failure is not null)
                {
                    throw failure;
                }
            },
            new ServerSetup
            {
                Meters = metrics,
                Limits = limits =>
                {
                    RequireRate(AbortRate)(limits);
                    limits.MaxRequestBodySize = bodySize;
                },
            }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Post(bodySize));
            var piece = new byte[pieceSize];
            var sending = Task.Run(async () =>
            {
                for (var i = 0; i < pieces; i++)
                {
                    await client.Stream.WriteAsync(piece).OrTimeout();
                    await Task.Delay(10);
                }
            });

            await requestAborted.Task.OrTimeout();
            await AssertAbortedForRateAsync(fin);

            // Cancelled rather than an IOException: the server aborted the connection itself, for the rate.
            Assert.IsAssignableFrom<OperationCanceledException>(await copyFailure.Task.OrTimeout());
            await AssertCutShortAsync(client.Stream, bodySize);

            // The client's sends end when the connection does (with an error once it is reset); only observed here.
            _ = await FailureOf(() => sending.OrTimeout());
        }

        var duration = Assert.Single(metrics.On(KestrelMetricsCapture.ConnectionDuration));
        Assert.Equal("min_response_data_rate", duration.ErrorType);
    }

    [Fact]
    public async Task ConnectionNotClosedWhenClientSatisfiesMinimumDataRateGivenLargeResponseChunks()
    {
        // One 8 MB chunk (upstream: four) that the client reads in 4 s, twice the grace period, on a keep-alive
        // connection it then closes itself.
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var appDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(WriteOneLargeChunk(requestAborted, appDone), new ServerSetup { Limits = RequireRate(LowRate) }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());
            await client.ExpectAsync("HTTP/1.1 200 OK", Http1.AnyDate, "Transfer-Encoding: chunked", "", $"{LargeChunk:x}", "");
            await ReceiveSlowlyAsync(client.Stream, LargeChunk, bytesPerSecond: LargeChunk / 4);
            await client.ExpectAsync("", "0", "", "");
            await appDone.Task.OrTimeout();

            client.ShutdownSend();
            await client.ExpectClosedAsync();
        }

        Assert.DoesNotContain(Log.Entries, e => ResponseRateNotSatisfied(e));
        AssertLoggedOnce(ConnectionStop, "the connection's stop");
        Assert.False(requestAborted.Task.IsCompleted, "RequestAborted fired.");
    }

    [Fact]
    public async Task ConnectionNotClosedWhenClientSatisfiesMinimumDataRateGivenLargeResponseHeaders()
    {
        // One response (upstream: four) with 64 header lines of 1 MB each, which the client reads in 4 s, twice the
        // grace period.
        const int headerSize = 1024 * 1024;
        const int headerCount = 64;
        const string headerName = "X-Custom-Header";
        var value = new string('a', headerSize);
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            async context =>
            {
                context.RequestAborted.Register(() => requestAborted.TrySetResult());
                context.Response.Headers[headerName] = new StringValues(Enumerable.Repeat(value, headerCount).ToArray());
                context.Response.ContentLength = 0;
                await context.Response.BodyWriter.FlushAsync();
            },
            new ServerSetup { Limits = RequireRate(LowRate) }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get());
            await client.ExpectAsync("HTTP/1.1 200 OK", "Content-Length: 0", Http1.AnyDate, "");

            // The header lines and the blank line that ends them.
            var headerLine = $"{headerName}: ".Length + headerSize + 2;
            await ReceiveSlowlyAsync(client.Stream, ((long)headerLine * headerCount) + 2, bytesPerSecond: headerSize * headerCount / 4);

            client.ShutdownSend();
            await client.ExpectClosedAsync();
        }

        Assert.DoesNotContain(Log.Entries, e => ResponseRateNotSatisfied(e));
        AssertLoggedOnce(ConnectionStop, "the connection's stop");
        Assert.False(requestAborted.Task.IsCompleted, "RequestAborted fired.");
    }

    [Fact]
    public async Task ClientCanReceiveFullConnectionCloseResponseWithoutErrorAtALowDataRate()
    {
        // As …GivenLargeResponseChunks, but the request asks for Connection: close, so the server ends the connection
        // after the response, and the client reads to the end.
        using var metrics = new KestrelMetricsCapture();
        var requestAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var appDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(WriteOneLargeChunk(requestAborted, appDone), new ServerSetup { Limits = RequireRate(LowRate), Meters = metrics }))
        {
            using var client = await server.ConnectAsync();
            await client.SendAsync(Http1.Get(connection: "close"));
            await client.ExpectAsync("HTTP/1.1 200 OK", "Connection: close", Http1.AnyDate, "Transfer-Encoding: chunked", "", $"{LargeChunk:x}", "");
            await ReceiveSlowlyAsync(client.Stream, LargeChunk, bytesPerSecond: LargeChunk / 4);
            await client.ExpectThenEndAsync("", "0", "", "");
            await appDone.Task.OrTimeout();
        }

        Assert.DoesNotContain(Log.Entries, e => ResponseRateNotSatisfied(e));
        AssertLoggedOnce(ConnectionStop, "the connection's stop");
        Assert.False(requestAborted.Task.IsCompleted, "RequestAborted fired.");

        var duration = Assert.Single(metrics.On(KestrelMetricsCapture.ConnectionDuration));
        Assert.Null(duration.ErrorType);
    }

    /// <summary>The harness's endpoint for a row of <see cref="EndpointRows"/>, with the case's meters and limits.</summary>
    private static ServerSetup Setup(string listenOptionsName, KestrelMetricsCapture? metrics = null, Action<KestrelServerLimits>? limits = null) =>
        new()
        {
            Meters = metrics,
            Limits = limits,
            Endpoint = listenOptionsName switch
            {
                "Loopback" => null,
                "PassThrough" => listen => listen.UseForwardingPipes(),
                _ => throw new ArgumentOutOfRangeException(nameof(listenOptionsName), listenOptionsName, "Not a row of EndpointRows."),
            },
        };

    /// <summary>Kestrel's minimum response rate at <paramref name="bytesPerSecond"/>, with a 2 s grace period.</summary>
    private static Action<KestrelServerLimits> RequireRate(int bytesPerSecond) =>
        limits => limits.MinResponseDataRate = new MinDataRate(bytesPerSecond, gracePeriod: TimeSpan.FromSeconds(2));

    /// <summary>An app that writes one <see cref="LargeChunk"/> in a single write (so a single chunk), given RequestAborted.</summary>
    private static RequestDelegate WriteOneLargeChunk(TaskCompletionSource requestAborted, TaskCompletionSource done) => async context =>
    {
        context.RequestAborted.Register(() => requestAborted.TrySetResult());
        await context.Response.BodyWriter.WriteAsync(new byte[LargeChunk], context.RequestAborted);
        done.TrySetResult();
    };

    /// <summary>Kestrel logged the rate violation and the connection's stop, and the transport closed it (FIN or RST).</summary>
    private async Task AssertAbortedForRateAsync(bool fin)
    {
        await LoggedAsync(ResponseRateNotSatisfied);
        await LoggedAsync(ConnectionStop);
        await LoggedAsync(fin ? TransportEvent.ConnectionWriteFin : TransportEvent.ConnectionWriteRst);
    }

    /// <summary>The client gets less than <paramref name="fullLength"/> bytes before the stream ends or is reset.</summary>
    private static async Task AssertCutShortAsync(Stream stream, long fullLength)
    {
        var buffer = new byte[64 * 1024];
        long received = 0;
        try
        {
            int count;
            while (received < fullLength && (count = await stream.ReadAsync(buffer).OrTimeout()) > 0)
            {
                received += count;
            }
        }
        catch (IOException)
        {
            // Reset: an abort, as expected.
        }

        Assert.True(received < fullLength, $"The whole response ({fullLength} bytes) arrived.");
    }

    /// <summary>
    /// Reads exactly <paramref name="count"/> bytes no faster than <paramref name="bytesPerSecond"/> on average, as a
    /// slow client would; fails if the stream ends first. Each read is bounded.
    /// </summary>
    private static async Task ReceiveSlowlyAsync(Stream stream, long count, int bytesPerSecond)
    {
        var buffer = new byte[64 * 1024];
        var clock = Stopwatch.StartNew();
        long received = 0;
        while (received < count)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - received))).OrTimeout();
            Assert.True(read > 0, $"The stream ended after {received} of {count} bytes.");
            received += read;

            var ahead = TimeSpan.FromSeconds((double)received / bytesPerSecond) - clock.Elapsed;
            if (ahead > TimeSpan.Zero)
            {
                await Task.Delay(ahead);
            }
        }
    }
}

public sealed class ResponseTestsOnSockets : ResponseTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class ResponseTestsOnReusePort : ResponseTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class ResponseTestsOnThunderingHerd : ResponseTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class ResponseTestsOnSerialized : ResponseTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class ResponseTestsOnSocketsInline : ResponseTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class ResponseTestsOnReusePortInline : ResponseTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
