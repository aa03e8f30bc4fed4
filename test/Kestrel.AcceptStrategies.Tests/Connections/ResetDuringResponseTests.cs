using System.Collections.Concurrent;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// A client that resets while a large response is being written is ordinary (a closed browser tab): Kestrel's socket
/// transport reports it as a connection reset (Debug) and ends the app's writes (or cancels them through
/// RequestAborted); nothing is an error. A transport that hands the send's ECONNRESET to Kestrel as an unexpected
/// failure makes every such client an error in the log, and the app's write throw a ConnectionResetException.
/// </summary>
[Collection(ConnectionFaults.Name)]
public sealed class ResetDuringResponseTests(ITestOutputHelper output)
{
    private const int Clients = 10;
    private const int ResponseBytes = 64 * 1024 * 1024;
    private const int ChunkBytes = 64 * 1024;
    private const int ReadBeforeReset = 256 * 1024;

    /// <summary>Every request's Information lines: not about the connection, and written whatever the transport.</summary>
    private static readonly string[] s_requestLogCategories = ["Microsoft.AspNetCore.Hosting.Diagnostics", "Microsoft.AspNetCore.Routing.EndpointMiddleware"];

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task ClientResetsDuringALargeResponse_NothingAboveDebugIsLogged_AndTheWriteLoopEndsQuietly(AcceptStrategy strategy)
    {
        var connections = new ServerConnections(strategy);
        var logs = new CapturedLogs();
        var outcomes = new ConcurrentQueue<string>();
        var handled = 0;
        var allHandled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await FaultHost.StartAsync(
            strategy,
            connections,
            app => app.MapGet("/large", async (HttpContext context) =>
            {
                // An app streaming a large download as documented: Content-Length set, RequestAborted passed.
                context.Response.ContentLength = ResponseBytes;
                var chunk = new byte[ChunkBytes];
                try
                {
                    for (var sent = 0; sent < ResponseBytes; sent += chunk.Length)
                    {
                        await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    }

                    outcomes.Enqueue("completed");
                }
                catch (OperationCanceledException)
                {
                    outcomes.Enqueue(nameof(OperationCanceledException));
                }
                catch (Exception e)
                {
                    // Recorded, not rethrown: the app's own unhandled-exception log is not the transport's.
                    outcomes.Enqueue($"{e.GetType().FullName}: {e.Message}");
                }
                finally
                {
                    if (Interlocked.Increment(ref handled) == Clients)
                    {
                        allHandled.TrySetResult();
                    }
                }
            }),
            logs: logs,
            settings: new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Debug" });
        var started = logs.Entries.Count;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var ports = await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
            await client.SendAsync("GET /large HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
            var (status, _) = await client.ReadHeadAsync(cts.Token);
            Assert.Equal(200, status);
            var buffer = new byte[16 * 1024];
            for (var read = 0; read < ReadBeforeReset;)
            {
                var n = await client.ReadAsync(buffer, cts.Token);
                read += n > 0 ? n : throw new IOException($"The response ended after {read} bytes");
            }

            var port = client.Socket.LocalPort();
            client.Socket.Reset();
            return port;
        }));

        // The app's loops have ended, and Kestrel is done with every connection (its last log lines are written).
        await allHandled.Task.WaitAsync(cts.Token);
        foreach (var port in ports)
        {
            var connection = await connections.ForClientAsync(port, cts.Token);
            await connection.Ended.Task.WaitAsync(cts.Token);
        }

        var logged = logs.Entries.Skip(started).ToArray();
        var loud = logged
            .Where(e => e.Level > LogLevel.Debug && !(e.Level == LogLevel.Information && s_requestLogCategories.Contains(e.Category)))
            .ToArray();
        var escaped = outcomes.Where(o => o is not ("completed" or nameof(OperationCanceledException))).ToArray();
        output.WriteLine($"{strategy}: app write loops ended with: {string.Join("; ", outcomes.GroupBy(o => o).Select(g => $"{g.Key} x{g.Count()}"))}");
        output.WriteLine($"Logged above Debug ({loud.Length}):\n  {string.Join("\n  ", loud.Select(e => e.ToString()).Distinct())}");
        output.WriteLine($"Transport events at Debug: {string.Join(", ", logged.Where(e => e.Level == LogLevel.Debug && (e.Category.Contains(".Transport.", StringComparison.Ordinal) || e.Category.StartsWith("Kestrel.AcceptStrategies.Connections", StringComparison.Ordinal))).GroupBy(e => e.EventId.Name).Select(g => $"{g.Key} x{g.Count()}"))}");

        Assert.True(
            loud.Length == 0,
            $"{loud.Length} entries above Debug for {Clients} clients that reset mid-response under {strategy}, e.g. " +
            string.Join(" | ", loud.GroupBy(e => $"{e.Level} {e.Category}[{e.EventId.Name}]").Select(g => $"{g.Key} x{g.Count()}: {Shorten(g.First())}")));
        Assert.True(
            escaped.Length == 0,
            $"{escaped.Length} of {Clients} write loops under {strategy} ended with an exception other than OperationCanceledException: " +
            string.Join("; ", escaped.GroupBy(o => o).Select(g => $"{g.Key} x{g.Count()}")));
    }

    private static string Shorten(LogEntry entry)
    {
        var text = entry.Message + (entry.Exception is null ? "" : $" ({entry.Exception.GetType().Name}: {entry.Exception.Message})");
        return text.Length <= 200 ? text : text[..200] + "...";
    }
}
