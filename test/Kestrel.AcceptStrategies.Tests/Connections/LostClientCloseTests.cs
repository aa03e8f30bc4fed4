using System.Diagnostics;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// A keep-alive client that sends the start of its next request and at once half-closes or resets: the data and the
/// FIN (or RST) are both queued before the server's first read of them. The server must still see the end: an
/// edge-triggered loop that stops reading at the first short read, and ignores EPOLLRDHUP, never does.
/// </summary>
[Collection(ConnectionFaults.Name)]
public sealed class LostClientCloseTests(ITestOutputHelper output)
{
    private const int Clients = 20;
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData(AcceptStrategy.ReusePort, ClientEnd.HalfClose)]
    [InlineData(AcceptStrategy.ThunderingHerd, ClientEnd.HalfClose)]
    [InlineData(AcceptStrategy.Serialized, ClientEnd.HalfClose)]
    [InlineData(AcceptStrategy.ReusePort, ClientEnd.Reset)]
    [InlineData(AcceptStrategy.ThunderingHerd, ClientEnd.Reset)]
    [InlineData(AcceptStrategy.Serialized, ClientEnd.Reset)]
    public async Task ClientEndsRightAfterTheStartOfItsNextRequest_ServerEndsTheConnectionWithinOneSecond(AcceptStrategy strategy, ClientEnd end)
    {
        var connections = new ServerConnections(strategy);
        await using var server = await FaultHost.StartAsync(strategy, connections, _ => { });
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        var clients = new List<RawHttpClient>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
                clients.Add(client);
                await client.SendAsync($"GET /foo?i={i} HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
                Assert.Equal((200, TestServer.Body), await client.ReadResponseAsync(cts.Token));
            }

            var onServer = await Task.WhenAll(clients.Select(c => connections.ForClientAsync(c.Socket.LocalPort(), cts.Token)));
            Assert.DoesNotContain(onServer, c => c.IsOver);

            // The start of a request and the end of the connection, back to back: both are queued before the
            // server's read runs (for a half-close the FIN rides with the data; a reset follows it from a client thread
            // the woken server cannot preempt).
            var fifo = ClientEnds.RunBackToBack(() =>
            {
                foreach (var client in clients)
                {
                    client.Socket.SendAndEnd("GET /foo HTTP/1.1\r\nHost: x\r\n", end);
                }
            });

            var ended = Stopwatch.StartNew();

            // A half-closed client can still read: it sees the end of the server's side too (after a 400, if any).
            var eofs = end == ClientEnd.HalfClose
                ? clients.Select(c => c.ReadToEndAsync(cts.Token)).ToArray()
                : [];
            var over = Task.WhenAll(onServer.Select(c => Task.WhenAll(c.Closed.Task, c.Ended.Task)).Concat(eofs));
            await Task.WhenAny(over, Task.Delay(s_limit, cts.Token));
            var elapsed = ended.Elapsed;

            var closed = onServer.Count(c => c.Closed.Task.IsCompleted);
            var done = onServer.Count(c => c.Ended.Task.IsCompleted);
            var clientEofs = eofs.Count(e => e.IsCompletedSuccessfully && e.Result == "EOF");
            output.WriteLine($"{strategy} {end} (client under SCHED_FIFO: {fifo}): after {elapsed.TotalMilliseconds:F0} ms, ConnectionClosed fired for {closed} of {Clients}, Kestrel done with {done}, client EOF {clientEofs} of {eofs.Length}");

            Assert.True(
                closed == Clients && done == Clients,
                $"{Clients - Math.Min(closed, done)} of {Clients} connections still open on the server {s_limit.TotalSeconds} s after the client's {end} " +
                $"(ConnectionClosed fired for {closed}, Kestrel done with {done}); server sockets: {TcpTable.Describe(TcpTable.ServerSide(server.Port))}");
            Assert.True(
                clientEofs == eofs.Length,
                $"{eofs.Length - clientEofs} of {eofs.Length} half-closed clients did not read the end of the connection within {s_limit.TotalSeconds} s " +
                $"({string.Join(", ", eofs.Where(e => e.IsCompletedSuccessfully).Select(e => e.Result).Distinct())})");
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }
}
