using System.Diagnostics;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// An aborted connection whose socket still holds unsent output (a client that stopped reading: exactly the
/// connections Kestrel aborts for MinResponseDataRate) must go at once, as Kestrel's socket transport resets it. A
/// shutdown(SHUT_RDWR) and close instead queue the FIN behind the unsent bytes: the socket lives on as an orphan in
/// FIN-WAIT-1 with its send buffer for as long as the kernel keeps probing the client's closed window (minutes).
/// </summary>
[Collection(ConnectionFaults.Name)]
public sealed class AbortOrphanTests(ITestOutputHelper output)
{
    private const int Clients = 20;
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(2);

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task AbortWithUnsentOutput_ToClientsThatStoppedReading_LeavesNoServerSocketBehind(AcceptStrategy strategy)
    {
        var connections = new ServerConnections(strategy);
        var aborted = 0;
        var allAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await FaultHost.StartAsync(strategy, connections, app => app.MapGet("/fill", async (HttpContext context) =>
        {
            // Writes until a write has to wait (the client reads nothing, the socket and Kestrel's buffer are full),
            // then aborts the connection as MinResponseDataRate would.
            var chunk = new byte[64 * 1024];
            try
            {
                for (var i = 0; i < 4096; i++)
                {
                    var write = context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    if (!write.IsCompleted)
                    {
                        context.Abort();
                        if (Interlocked.Increment(ref aborted) == Clients)
                        {
                            allAborted.TrySetResult();
                        }

                        await write;
                        break;
                    }

                    await write;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
            }
        }));
        using var cts = new CancellationTokenSource(TestServer.Timeout);
        var before = TcpTable.SockStat();

        var clients = new List<RawHttpClient>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                // Default buffers, as a real client has; it never reads and keeps its socket open.
                var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
                clients.Add(client);
                await client.SendAsync("GET /fill HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
            }

            await allAborted.Task.WaitAsync(cts.Token);
            var afterAbort = TcpTable.SockStat();
            var since = Stopwatch.StartNew();

            // No event tells when the kernel frees a socket: poll its table, bounded.
            IReadOnlyList<TcpSocket> left;
            while ((left = TcpTable.ServerSide(server.Port)).Count > 0 && since.Elapsed < s_limit)
            {
                await Task.Delay(20, cts.Token);
            }

            output.WriteLine($"{strategy}: server-side sockets {since.Elapsed.TotalMilliseconds:F0} ms after the aborts: {TcpTable.Describe(left)}");
            output.WriteLine($"sockstat before: {before}; at the aborts: {afterAbort}; now: {TcpTable.SockStat()}");
            Assert.True(
                left.Count == 0,
                $"{left.Count} server-side sockets of port {server.Port} left {s_limit.TotalSeconds} s after {strategy} aborted {Clients} connections " +
                $"with unsent output: {TcpTable.Describe(left)}; {TcpTable.SockStat()} (before: {before})");
        }
        finally
        {
            // Closing with unread data resets: the client's side and any orphan of the server's go now.
            clients.ForEach(c => c.Socket.Reset());
            clients.ForEach(c => c.Dispose());
        }
    }
}
