using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// Kestrel's socket transport offers <see cref="IConnectionSocketFeature"/>: apps reach the connection's socket through
/// it to set options (keep-alive probes, buffer sizes). The event-loop connections must offer it too, and the
/// connection must still work after the app used it.
/// </summary>
[Collection(ConnectionFaults.Name)]
public sealed class SocketFeatureTests
{
    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task ConnectionSocketFeature_AppSetsKeepAlive_SocketAnswersAndTheConnectionStillWorks(AcceptStrategy strategy)
    {
        var connections = new ServerConnections(strategy);
        await using var server = await FaultHost.StartAsync(strategy, connections, app => app.MapGet("/socket", (HttpContext context) =>
        {
            var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
            if (socket is null)
            {
                return "no socket";
            }

            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            var keepAlive = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!;
            return FormattableString.Invariant($"{keepAlive} {socket.LocalEndPoint} {socket.RemoteEndPoint}");
        }));
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
        await client.SendAsync("GET /socket HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
        var (status, body) = await client.ReadResponseAsync(cts.Token);
        Assert.Equal(200, status);
        Assert.False(body == "no socket", $"HttpContext.Features.Get<IConnectionSocketFeature>()?.Socket is null under {strategy}");

        var parts = body.Split(' ');
        Assert.True(parts[0] != "0", $"SO_KEEPALIVE read back as {parts[0]} after the app set it under {strategy}");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, server.Port), IPEndPoint.Parse(parts[1]));
        Assert.Equal((IPEndPoint)client.Socket.LocalEndPoint!, IPEndPoint.Parse(parts[2]));

        // The same keep-alive connection serves the next request, and its end is still seen both ways.
        await client.SendAsync("GET /foo HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
        Assert.Equal((200, TestServer.Body), await client.ReadResponseAsync(cts.Token));
        var onServer = await connections.ForClientAsync(client.Socket.LocalPort(), cts.Token);
        Assert.Single(connections.All);

        client.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal("EOF", await client.ReadToEndAsync(cts.Token));
        await onServer.Closed.Task.WaitAsync(cts.Token);
        await onServer.Ended.Task.WaitAsync(cts.Token);
    }
}
