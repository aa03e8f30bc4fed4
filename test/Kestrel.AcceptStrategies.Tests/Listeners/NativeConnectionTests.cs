using System.Net;
using System.Net.Sockets;
using System.Text;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// The connections an acceptor's event loop serves itself (no accept mutex: ReusePort, ThunderingHerd): reads on the
/// loop with pause and resume, sends by the flushing thread with EPOLLOUT when the socket is full, end of input,
/// aborts, and endpoints, through a real Kestrel host and real sockets.
/// </summary>
public sealed class NativeConnectionTests
{
    private const int LargeResponseBytes = 32 * 1024 * 1024;
    private const int UploadBytes = 8 * 1024 * 1024;
    private static readonly TimeSpan LargeTimeout = TimeSpan.FromSeconds(90);

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task LargeResponse_SlowReaderWithSmallReceiveBuffer_ArrivesWhole(AcceptStrategy strategy)
    {
        // 32 MB through a window of a few KB: the server's sends hit EAGAIN over and over and finish only through
        // EPOLLOUT on the loop.
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartAsync(strategy, app => app.MapGet("/large", async context =>
        {
            context.Response.ContentLength = LargeResponseBytes;
            var chunk = new byte[64 * 1024];
            for (var offset = 0; offset < LargeResponseBytes; offset += chunk.Length)
            {
                Pattern(chunk, offset);
                await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
            }

            written.TrySetResult();
        }));
        using var cts = new CancellationTokenSource(LargeTimeout);

        using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token, receiveBufferSize: 4096);
        await client.SendAsync("GET /large HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
        var (status, headers) = await client.ReadHeadAsync(cts.Token);
        Assert.Equal(200, status);
        Assert.Equal(LargeResponseBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), headers["Content-Length"]);

        var buffer = new byte[2048];
        var expected = new byte[buffer.Length];
        long received = 0;
        while (received < LargeResponseBytes)
        {
            var n = await client.ReadAsync(buffer, cts.Token);
            Assert.True(n > 0, $"The connection ended after {received} of {LargeResponseBytes} bytes");
            Pattern(expected.AsSpan(0, n), received);
            Assert.True(buffer.AsSpan(0, n).SequenceEqual(expected.AsSpan(0, n)), $"Wrong bytes at offset {received}");
            received += n;
        }

        await written.Task.WaitAsync(cts.Token);
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task Upload_LargerThanMaxReadBuffer_ReadInSmallChunks_ArrivesWhole(AcceptStrategy strategy)
    {
        // 8 MB against a 1 MB MaxReadBufferSize read 1 KB at a time: the loop's reads pause on the full input pipe
        // and must resume by themselves (edge-triggered: no new event for what arrived while paused).
        await using var server = await StartAsync(strategy, app => app.MapPost("/upload", async context =>
        {
            var chunk = new byte[1024];
            long length = 0;
            var hash = FnvOffset;
            int n;
            while ((n = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                length += n;
                hash = Fnv(hash, chunk.AsSpan(0, n));
            }

            await context.Response.WriteAsync($"{length} {hash}");
        }));
        using var cts = new CancellationTokenSource(LargeTimeout);

        var body = new byte[UploadBytes];
        Pattern(body, 0);
        using var http = Load.CreateClient();
        http.Timeout = LargeTimeout;
        using var response = await http.PostAsync(new Uri(server.BaseAddress, "/upload"), new ByteArrayContent(body), cts.Token);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"{UploadBytes} {Fnv(FnvOffset, body)}", await response.Content.ReadAsStringAsync(cts.Token));
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task ClientClosesMidRequest_HandlerSeesRequestAborted_ConnectionCountedClosed_NextRequestServed(AcceptStrategy strategy)
    {
        // The client's FIN ends reading on the loop, completes Kestrel's input and fires ConnectionClosed: the request
        // is aborted, and the worker's ConnectionClosed-based counter (here on every connection) drops back to zero.
        var counter = new ConnectionCounter();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartAsync(
            strategy,
            app => app.MapGet("/wait", async context =>
            {
                started.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    aborted.TrySetResult();
                }
            }),
            onConnection: counter.Accepted);
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using (var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token))
        {
            await client.SendAsync("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
            await started.Task.WaitAsync(cts.Token);
            Assert.Equal(1, counter.Open);
        }

        await aborted.Task.WaitAsync(cts.Token);
        while (counter.Open != 0)
        {
            // ConnectionClosed is raised on the thread pool; wait (bounded) for it to have run.
            await Task.Delay(10, cts.Token);
        }

        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(server.BaseAddress, "/foo")));
        Assert.Equal(2, counter.Total);
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task PipelinedRequests_InOneWrite_AllAnsweredInOrder(AcceptStrategy strategy)
    {
        const int Count = 50;
        await using var server = await StartAsync(strategy, app => app.MapGet("/echo", (HttpContext context) =>
            context.Response.WriteAsync($"#{context.Request.Query["i"]}")));
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
        await client.SendAsync(string.Concat(Enumerable.Range(0, Count).Select(i => $"GET /echo?i={i} HTTP/1.1\r\nHost: x\r\n\r\n")), cts.Token);

        for (var i = 0; i < Count; i++)
        {
            Assert.Equal((200, $"#{i}"), await client.ReadResponseAsync(cts.Token));
        }
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort, "http://127.0.0.1:0")]
    [InlineData(AcceptStrategy.ThunderingHerd, "http://127.0.0.1:0")]
    [InlineData(AcceptStrategy.ReusePort, "http://0.0.0.0:0")]
    [InlineData(AcceptStrategy.ThunderingHerd, "http://0.0.0.0:0")]
    [InlineData(AcceptStrategy.ReusePort, "any")]
    [InlineData(AcceptStrategy.ThunderingHerd, "any")]
    [InlineData(AcceptStrategy.Serialized, "any")]
    public async Task EndPoints_AreTheClientSocketsAndTheAddressItReached(AcceptStrategy strategy, string listen)
    {
        // Serialized keeps Kestrel's SocketConnection: the reference for what a dual-mode ListenAnyIP reports.
        await using var server = await StartAsync(
            strategy,
            app => app.MapGet("/endpoints", (HttpContext context) => context.Response.WriteAsync(
                $"{context.Connection.RemoteIpAddress} {context.Connection.RemotePort} {context.Connection.LocalIpAddress} {context.Connection.LocalPort}")),
            builder =>
            {
                if (listen == "any")
                {
                    builder.WebHost.ConfigureKestrel(k => k.ListenAnyIP(0));
                }
                else
                {
                    builder.WebHost.UseUrls(listen);
                }
            });
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
        await client.SendAsync("GET /endpoints HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
        var parts = (await client.ReadResponseAsync(cts.Token)).Body.Split(' ');

        // A dual-mode socket names IPv4 peers as IPv4-mapped IPv6 addresses, as Kestrel's own transport does.
        var dual = listen == "any" && Socket.OSSupportsIPv6;
        var loopback = dual ? IPAddress.Loopback.MapToIPv6() : IPAddress.Loopback;
        var clientEnd = (IPEndPoint)client.Socket.LocalEndPoint!;
        Assert.Equal(loopback, IPAddress.Parse(parts[0]));
        Assert.Equal(clientEnd.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), parts[1]);
        Assert.Equal(loopback, IPAddress.Parse(parts[2]));
        Assert.Equal(server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), parts[3]);
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task ServerAbort_ClientSeesTheConnectionEnd(AcceptStrategy strategy)
    {
        await using var server = await StartAsync(strategy, app => app.MapGet("/abort", context =>
        {
            context.Abort();
            return Task.CompletedTask;
        }));
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
        await client.SendAsync("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);

        Assert.Contains(await client.ReadToEndAsync(cts.Token), new[] { "EOF", nameof(SocketError.ConnectionReset) });
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    public async Task KeepAlive_ThousandsOfSequentialRequestsOnOneConnection_AllServed(AcceptStrategy strategy)
    {
        const int Count = 2000;
        await using var server = await StartAsync(strategy, app => app.MapGet("/id", (HttpContext context) =>
            context.Response.WriteAsync(context.Connection.Id)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        using var http = Load.CreateClient(maxConnections: 1);
        var ids = new HashSet<string>();
        for (var i = 0; i < Count; i++)
        {
            using var response = await http.GetAsync(new Uri(server.BaseAddress, $"/id?i={i}"), cts.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            ids.Add(await response.Content.ReadAsStringAsync(cts.Token));
        }

        Assert.Single(ids);
    }

    private const ulong FnvOffset = 14695981039346656037;

    private static ulong Fnv(ulong hash, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211;
        }

        return hash;
    }

    /// <summary>The byte at stream offset i is i mod 251: a dropped, repeated or reordered block shows.</summary>
    private static void Pattern(Span<byte> destination, long offset)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = (byte)((offset + i) % 251);
        }
    }

    /// <summary>A host whose every connection must be the event loop's own (Kestrel's SocketConnection for Serialized).</summary>
    private static Task<TestServer> StartAsync(
        AcceptStrategy strategy, Action<WebApplication> map, Action<WebApplicationBuilder>? build = null, Action<ConnectionContext>? onConnection = null)
    {
        var app = TestServer.Build(
            o =>
            {
                o.Strategy = strategy;
                o.Acceptors = 2;
            },
            builder =>
            {
                builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Use(next => connection =>
                {
                    if (connection is NativeConnection != (strategy != AcceptStrategy.Serialized))
                    {
                        // Refused: the client sees the connection end and the test fails.
                        throw new InvalidOperationException($"{strategy} served a {connection.GetType().Name}");
                    }

                    onConnection?.Invoke(connection);
                    return next(connection);
                })));
                build?.Invoke(builder);
            });
        map(app);
        return TestServer.StartAsync(app);
    }
}
