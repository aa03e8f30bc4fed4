using System.Globalization;
using System.Net;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// An event-loop connection whose client stops reading a large response: the socket stays full and the send loop
/// waits for EPOLLOUT. Neither the loop's other connections nor an abort may wait with it. Serialized (Kestrel's own
/// SocketConnection) is the reference.
/// </summary>
public sealed class NativeConnectionStallTests
{
    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.Serialized)]
    public async Task ClientStopsReading_OtherConnectionsOfTheSameLoopAreStillServed(AcceptStrategy strategy)
    {
        // One acceptor, so the stalled connection and the next ones share an event loop. The response is one write, so
        // once EPOLLOUT has resumed its send loop that loop runs on the event loop's thread until it is all sent; the
        // client reads a quarter (more than the server's socket buffers hold, so the send has already waited for
        // EPOLLOUT at least once) and stops, and the send must wait for the loop again instead of holding it.
        const int Size = 32 * 1024 * 1024;
        await using var server = await StartAsync(strategy, 1, context =>
        {
            context.Response.ContentLength = Size;
            return context.Response.Body.WriteAsync(new byte[Size], context.RequestAborted).AsTask();
        });
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var stalled = await RawHttpClient.ConnectAsync(server.Port, cts.Token, receiveBufferSize: 4096);
        await stalled.SendAsync("GET /stall HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
        await stalled.ReadHeadAsync(cts.Token);
        var buffer = new byte[16 * 1024];
        for (var read = 0; read < Size / 4;)
        {
            var n = await stalled.ReadAsync(buffer, cts.Token);
            read += n > 0 ? n : throw new IOException($"The response ended after {read} bytes");
        }

        using var http = Load.CreateClient();
        for (var i = 0; i < 20; i++)
        {
            // A new connection each time, accepted and served by the loop whose other connection is stalled.
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress, $"/foo?i={i}"));
            request.Headers.ConnectionClose = true;
            using var response = await http.SendAsync(request, cts.Token);
            Assert.Equal(TestServer.Body, await response.Content.ReadAsStringAsync(cts.Token));
        }
    }

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.Serialized)]
    public async Task Abort_WhileTheResponseWaitsForAFullSocket_ShutsTheConnectionDown(AcceptStrategy strategy)
    {
        // Kestrel aborts a connection whose client reads too slowly (MinResponseDataRate) exactly so: the send is
        // stuck on a full socket. As Kestrel's SocketConnection, the abort must shut the socket down there and then,
        // not when the client next reads (it may never).
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartAsync(strategy, 2, context => WriteUntilStalledAsync(context, () =>
        {
            context.Abort();
            aborted.TrySetResult();
        }));
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var reader = await RawHttpClient.ConnectAsync(server.Port, cts.Token, receiveBufferSize: 4096);
        var client = ((IPEndPoint)reader.Socket.LocalEndPoint!).Port;
        Assert.Equal("ESTABLISHED", TcpState(client, server.Port));
        await reader.SendAsync("GET /stall HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
        await aborted.Task.WaitAsync(cts.Token);

        // The server's end of this connection, as the kernel sees it: ESTABLISHED until shutdown(2) sends (or queues) its FIN.
        // Gone altogether (reset) does as well: the lookup itself was checked on the client's end above.
        while (TcpState(server.Port, client) == "ESTABLISHED")
        {
            await Task.Delay(10, cts.Token);
        }
    }

    /// <summary>A host whose /stall is <paramref name="handler"/>.</summary>
    private static Task<TestServer> StartAsync(AcceptStrategy strategy, int acceptors, RequestDelegate handler)
    {
        var app = TestServer.Build(o =>
        {
            o.Strategy = strategy;
            o.Acceptors = acceptors;
        });
        app.MapGet("/stall", handler);
        return TestServer.StartAsync(app);
    }

    /// <summary>
    /// Writes until a write has to wait (the client is not reading and the socket is full), then calls
    /// <paramref name="onStalled"/> and waits for the request to end.
    /// </summary>
    private static async Task WriteUntilStalledAsync(HttpContext context, Action onStalled)
    {
        var chunk = new byte[64 * 1024];
        try
        {
            for (var i = 0; i < 4096; i++)
            {
                var write = context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                if (!write.IsCompleted)
                {
                    onStalled();
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                }

                await write;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
    }

    /// <summary>The state of 127.0.0.1:<paramref name="port"/>'s end of the connection from <paramref name="peerPort"/>.</summary>
    private static string TcpState(int port, int peerPort)
    {
        var local = $"0100007F:{port:X4}";
        var remote = $"0100007F:{peerPort:X4}";
        foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields[1] == local && fields[2] == remote)
            {
                return int.Parse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture) switch
                {
                    1 => "ESTABLISHED",
                    4 => "FIN_WAIT1",
                    5 => "FIN_WAIT2",
                    7 => "CLOSE",
                    8 => "CLOSE_WAIT",
                    11 => "CLOSING",
                    var other => other.ToString(CultureInfo.InvariantCulture),
                };
            }
        }

        return "missing";
    }
}
