using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// <c>UnsafePreferInlineScheduling</c> on the event loops, in a real host: a kept-alive connection's next request runs
/// on the loop's thread; a handler that holds the loop for the threshold is logged once (event 88 when it returned,
/// 89 when the watch found it still running and a new thread took the loop over), after which that loop's requests
/// run on the thread pool, so a second connection is served while one handler blocks, and the other loops go on
/// running theirs. A handler that waits for its own loop (a synchronous body read) gets its body from the new thread.
/// </summary>
public sealed class InlineSchedulingTests
{
    private const int EventLoopBlocked = 88;
    private const int EventLoopTakenOver = 89;

    // More than the sender's and the receiver's socket buffers can hold together (twice their largest autotuned size).
    private static readonly int s_syncWriteBytes = SyncWriteBytes();

    public static TheoryData<AcceptStrategy> LoopStrategies => new() { AcceptStrategy.ReusePort, AcceptStrategy.ThunderingHerd };

    [Theory]
    [MemberData(nameof(LoopStrategies))]
    public async Task HandlerHoldingTheLoop_IsLoggedOnce_ThenTheLoopsRequestsRunOnTheThreadPool(AcceptStrategy strategy)
    {
        using var cts = new CancellationTokenSource(TestServer.Timeout);
        var logs = new CapturedLogs();
        using var hold = new HoldGate();
        await using var server = await StartAsync(strategy, inline: true, logs, hold);

        using var a = await RawHttpClient.ConnectAsync(server.Port, cts.Token);

        // A connection's first request is read with the accept (TCP_DEFER_ACCEPT) and starts on Kestrel's thread-pool
        // hand-off; a later one runs where its bytes are read: on the loop, unless Kestrel was not yet waiting for it.
        Assert.StartsWith($"acc:{server.Port}#0", await FirstAsync(a, "/where", answer => answer != "pool", cts.Token));

        // A blocking call on the loop (the app's Thread.Sleep), until the loop reports one.
        var blocked = await BlockUntilReportedAsync(a, logs, cts.Token);
        Assert.Equal(LogLevel.Warning, blocked.Level);
        Assert.True(IsHoldReport(blocked), blocked.ToString());
        Assert.True(long.Parse(Field(blocked, "Milliseconds"), System.Globalization.CultureInfo.InvariantCulture) >= 100, blocked.ToString());
        Assert.Equal("0", Field(blocked, "Acceptor"));

        // From now on: the thread pool, so a handler that blocks holds no loop, and another connection is served meanwhile.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("pool", await RequestAsync(a, "/where", cts.Token));
        }

        try
        {
            await a.SendAsync("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);
            Assert.Equal("pool", await hold.Entered.Task.WaitAsync(cts.Token));
            using var b = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
            Assert.Equal("pool", await RequestAsync(b, "/where", cts.Token));
            Assert.Equal("pool", await RequestAsync(b, "/where", cts.Token));
        }
        finally
        {
            hold.Release.Set();
        }

        Assert.Equal((200, "held"), await a.ReadResponseAsync(cts.Token));
        Assert.Equal("pool", await RequestAsync(a, "/block", cts.Token));

        Assert.Single(logs.Entries, IsHoldReport);
    }

    [Theory]
    [MemberData(nameof(LoopStrategies))]
    public async Task ALoopThatFellBack_LeavesTheOtherLoopsRunningRequests(AcceptStrategy strategy)
    {
        using var cts = new CancellationTokenSource(TestServer.Timeout);
        var logs = new CapturedLogs();
        using var hold = new HoldGate();
        await using var server = await StartAsync(strategy, inline: true, logs, hold, acceptors: 2);

        // One kept-alive connection on each loop: connect until both loops have answered from their own thread.
        var onLoop = new Dictionary<string, RawHttpClient>();
        try
        {
            for (var i = 0; i < 40 && onLoop.Count < 2; i++)
            {
                var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
                var loop = await FirstAsync(client, "/where", answer => answer != "pool", cts.Token);
                if (!onLoop.TryAdd(loop, client))
                {
                    client.Dispose();
                }
            }

            Assert.True(onLoop.Count == 2, $"40 connections reached only {string.Join(", ", onLoop.Keys)}");
            var (blockedLoop, other) = (onLoop[$"acc:{server.Port}#0"], onLoop[$"acc:{server.Port}#1"]);

            var blocked = await BlockUntilReportedAsync(blockedLoop, logs, cts.Token);
            Assert.Equal("0", Field(blocked, "Acceptor"));
            Assert.Equal("pool", await RequestAsync(blockedLoop, "/where", cts.Token));
            Assert.Equal($"acc:{server.Port}#1", await FirstAsync(other, "/where", answer => answer != "pool", cts.Token));
            Assert.Single(logs.Entries, IsHoldReport);
        }
        finally
        {
            foreach (var client in onLoop.Values)
            {
                client.Dispose();
            }
        }
    }

    [Theory]
    [MemberData(nameof(LoopStrategies))]
    public Task ASynchronousBodyReadOnTheLoop_IsTakenOver_AndGetsItsBody(AcceptStrategy strategy) =>
        OnAFreshLoopAsync(strategy, synchronousIO: true, async (server, logs, hold, ct) =>
        {
            using var a = await ConnectOnTheLoopAsync(server, logs, ct);

            // The headers alone: the handler reads the body synchronously on the loop, the one thread that could read it.
            await EnterOnTheLoopAsync(a, logs, hold, "POST /sync-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", "hello", ct);
            var takenOver = await logs.WaitForAsync(e => e.EventId.Id == EventLoopTakenOver, TimeSpan.FromSeconds(10), "EventLoopTakenOver");
            Assert.Equal(LogLevel.Warning, takenOver.Level);
            Assert.Equal("0", Field(takenOver, "Acceptor"));
            Assert.True(long.Parse(Field(takenOver, "Milliseconds"), System.Globalization.CultureInfo.InvariantCulture) >= 100, takenOver.ToString());

            // The loop's new thread reads the body; the handler, still on the old one, gets it.
            await a.SendAsync("hello", ct);
            var (status, body) = await a.ReadResponseAsync(ct);
            Assert.Equal((200, $"hello@acc:{server.Port}#0"), (status, body));

            // From now on the loop's requests run on the thread pool, on this connection and on new ones (this one's next
            // request may also run on the thread the loop left, which finishes what it started; never on the loop).
            AssertOffTheLoop(await RequestAsync(a, "/where-id", ct), hold);
            using var b = await RawHttpClient.ConnectAsync(server.Port, ct);
            Assert.Equal("pool", await RequestAsync(b, "/where", ct));
            Assert.Equal("pool", await RequestAsync(b, "/where", ct));
            Assert.Single(logs.Entries, IsHoldReport);
        });

    [Theory]
    [MemberData(nameof(LoopStrategies))]
    public Task ASynchronousWriteLargerThanTheBuffers_OnTheLoop_IsTakenOver_AndCompletes(AcceptStrategy strategy) =>
        OnAFreshLoopAsync(strategy, synchronousIO: true, async (server, logs, hold, ct) =>
        {
            using var a = await ConnectOnTheLoopAsync(server, logs, ct);

            // Not read until the loop is taken over: the write fills both sockets' buffers and waits for room that only
            // the loop (EPOLLOUT) reports.
            await EnterOnTheLoopAsync(a, logs, hold, "GET /sync-write HTTP/1.1\r\nHost: x\r\n\r\n", null, ct);
            var takenOver = await logs.WaitForAsync(e => e.EventId.Id == EventLoopTakenOver, TimeSpan.FromSeconds(10), "EventLoopTakenOver");
            Assert.Equal("0", Field(takenOver, "Acceptor"));

            var (status, body) = await a.ReadResponseAsync(ct);
            Assert.Equal((200, s_syncWriteBytes), (status, body.Length));
            AssertOffTheLoop(await RequestAsync(a, "/where-id", ct), hold);
            Assert.Single(logs.Entries, IsHoldReport);
        });

    [Theory]
    [MemberData(nameof(LoopStrategies))]
    public Task AHandlerThatDoesNotReturn_LeavesTheLoopToANewThread_ThatAcceptsAndServes(AcceptStrategy strategy) =>
        OnAFreshLoopAsync(strategy, synchronousIO: false, async (server, logs, hold, ct) =>
        {
            using var a = await ConnectOnTheLoopAsync(server, logs, ct);
            try
            {
                await EnterOnTheLoopAsync(a, logs, hold, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", null, ct);
                await logs.WaitForAsync(e => e.EventId.Id == EventLoopTakenOver, TimeSpan.FromSeconds(10), "EventLoopTakenOver");

                // One acceptor: only the loop's new thread can accept and serve this connection while /hold holds the old one.
                using var b = await RawHttpClient.ConnectAsync(server.Port, ct);
                Assert.Equal("pool", await RequestAsync(b, "/where", ct));
                Assert.Equal("pool", await RequestAsync(b, "/block", ct));
            }
            finally
            {
                hold.Release.Set();
            }

            Assert.Equal((200, "held"), await a.ReadResponseAsync(ct));
            AssertOffTheLoop(await RequestAsync(a, "/where-id", ct), hold);
            Assert.Single(logs.Entries, IsHoldReport);
        });

    [Theory]
    [MemberData(nameof(LoopStrategies))]
    public async Task WithoutTheOption_RequestsRunOnTheThreadPool_AndNothingIsLogged(AcceptStrategy strategy)
    {
        using var cts = new CancellationTokenSource(TestServer.Timeout);
        var logs = new CapturedLogs();
        using var hold = new HoldGate();
        await using var server = await StartAsync(strategy, inline: false, logs, hold);

        using var a = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("pool", await RequestAsync(a, i % 5 == 4 ? "/block" : "/where", cts.Token));
        }

        Assert.DoesNotContain(logs.Entries, IsHoldReport);
    }

    private static async Task<TestServer> StartAsync(AcceptStrategy strategy, bool inline, CapturedLogs logs, HoldGate hold, int acceptors = 1, bool synchronousIO = false)
    {
        var app = TestServer.Build(
            o =>
            {
                o.Strategy = strategy;
                o.Acceptors = acceptors;
            },
            builder =>
            {
                builder.Logging.AddProvider(logs);
                if (inline)
                {
                    builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
                }

                if (synchronousIO)
                {
                    builder.WebHost.ConfigureKestrel(o => o.AllowSynchronousIO = true);
                }
            });

        // Where a request ran: "pool" for a thread-pool thread, else the thread's name (an event loop's is acc:PORT#N).
        static string Where() => Thread.CurrentThread.IsThreadPoolThread ? "pool" : Thread.CurrentThread.Name ?? "unnamed";
        app.MapGet("/where", Where);

        // The same, with the thread's id: a loop's new thread after a take-over has the name of the thread it replaced.
        app.MapGet("/where-id", () => Where() is var where && where == "pool" ? where : $"{where} {Environment.CurrentManagedThreadId}");
        app.MapGet("/block", () =>
        {
            Thread.Sleep(300);
            return Where();
        });
        app.MapGet("/hold", () =>
        {
            hold.ThreadId = Environment.CurrentManagedThreadId;
            hold.Entered.TrySetResult(Where());
            Assert.True(hold.Release.Wait(TestServer.Timeout), "/hold was never released");
            return "held";
        });
        app.MapPost("/sync-body", (HttpContext context) =>
        {
            hold.ThreadId = Environment.CurrentManagedThreadId;
            hold.Entered.TrySetResult(Where());
            using var reader = new StreamReader(context.Request.Body);
            return reader.ReadToEnd() + "@" + Where();
        });
        app.MapGet("/sync-write", (HttpContext context) =>
        {
            hold.ThreadId = Environment.CurrentManagedThreadId;
            hold.Entered.TrySetResult(Where());
            context.Response.ContentLength = s_syncWriteBytes;
            var chunk = new byte[1 << 20];
            chunk.AsSpan().Fill((byte)'x');
            for (var written = 0; written < s_syncWriteBytes; written += chunk.Length)
            {
                context.Response.Body.Write(chunk);
            }
        });
        return await TestServer.StartAsync(app);
    }

    /// <summary>Sends <paramref name="path"/> on the kept-alive connection until an answer matches (at most 50 times).</summary>
    private static async Task<string> FirstAsync(RawHttpClient client, string path, Func<string, bool> match, CancellationToken ct)
    {
        var answers = new List<string>();
        for (var i = 0; i < 50; i++)
        {
            var answer = await RequestAsync(client, path, ct);
            if (match(answer))
            {
                return answer;
            }

            answers.Add(answer);
        }

        throw new Xunit.Sdk.XunitException($"No answer to {path} matched in 50 requests: {string.Join(", ", answers.Distinct())}.");
    }

    /// <summary>Sends /block (300 ms of Thread.Sleep) on the kept-alive connection until the loop has reported a hold (at most 20 times).</summary>
    private static async Task<LogEntry> BlockUntilReportedAsync(RawHttpClient client, CapturedLogs logs, CancellationToken ct)
    {
        for (var i = 0; i < 20; i++)
        {
            // Whichever request held it: the machine may have stalled an earlier one past the threshold.
            if (logs.Entries.FirstOrDefault(IsHoldReport) is { } logged)
            {
                return logged;
            }

            // The answer is where the request ran; a hold that returned is logged after that, after the answer was sent.
            var answer = await RequestAsync(client, "/block", ct);
            if (answer != "pool")
            {
                return await logs.WaitForAsync(IsHoldReport, TimeSpan.FromSeconds(10), "EventLoopBlocked or EventLoopTakenOver");
            }
        }

        throw new Xunit.Sdk.XunitException("/block never ran on the loop in 20 requests.");
    }

    /// <summary>
    /// Runs <paramref name="scenario"/> against a fresh one-acceptor server with the setting, again on another (at most
    /// three in all) when the loaded machine stalled the loop past the threshold before the scenario's own hold: the
    /// loop then runs nothing more, and the scenario cannot happen there.
    /// </summary>
    private static async Task OnAFreshLoopAsync(
        AcceptStrategy strategy, bool synchronousIO, Func<TestServer, CapturedLogs, HoldGate, CancellationToken, Task> scenario)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var cts = new CancellationTokenSource(TestServer.Timeout);
            var logs = new CapturedLogs();
            using var hold = new HoldGate();
            await using var server = await StartAsync(strategy, inline: true, logs, hold, synchronousIO: synchronousIO);
            try
            {
                await scenario(server, logs, hold, cts.Token);
                return;
            }
            catch (HeldTooSoonException) when (attempt < 3)
            {
            }
        }
    }

    /// <summary>A kept-alive connection whose requests run on loop 0.</summary>
    private static async Task<RawHttpClient> ConnectOnTheLoopAsync(TestServer server, CapturedLogs logs, CancellationToken ct)
    {
        var client = await RawHttpClient.ConnectAsync(server.Port, ct);
        try
        {
            Assert.StartsWith($"acc:{server.Port}#0", await FirstAsync(client, "/where", answer => answer != "pool", ct));
            return client;
        }
        catch (Xunit.Sdk.XunitException) when (logs.Entries.FirstOrDefault(IsHoldReport) is { } held)
        {
            client.Dispose();
            throw new HeldTooSoonException(held);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends <paramref name="request"/> until its handler has entered on the loop's thread (at most 10 times); a run
    /// that landed on the thread pool is finished (<paramref name="body"/> sent, or /hold released) and answered.
    /// </summary>
    private static async Task EnterOnTheLoopAsync(RawHttpClient client, CapturedLogs logs, HoldGate hold, string request, string? body, CancellationToken ct)
    {
        for (var i = 0; i < 10; i++)
        {
            if (logs.Entries.FirstOrDefault(IsHoldReport) is { } held)
            {
                throw new HeldTooSoonException(held);
            }

            await client.SendAsync(request, ct);
            if (await hold.Entered.Task.WaitAsync(ct) != "pool")
            {
                return;
            }

            if (body is not null)
            {
                await client.SendAsync(body, ct);
            }
            else
            {
                hold.Release.Set();
            }

            Assert.Equal(200, (await client.ReadResponseAsync(ct)).Status);
            hold.Reset();
        }

        throw new Xunit.Sdk.XunitException($"{request.Split(' ')[1]} never entered on the loop in 10 requests.");
    }

    /// <summary>
    /// After a take-over, a request of the connection whose code held the loop runs on the thread pool, or on the thread
    /// the loop left (Kestrel goes on with a request already read on the thread that finished the last): not on the loop.
    /// </summary>
    private static void AssertOffTheLoop(string whereId, HoldGate hold) =>
        Assert.True(whereId == "pool" || whereId.EndsWith(string.Create(System.Globalization.CultureInfo.InvariantCulture, $" {hold.ThreadId}"), StringComparison.Ordinal),
            $"ran on {whereId}, neither the thread pool nor the thread the loop left ({hold.ThreadId})");

    private static async Task<string> RequestAsync(RawHttpClient client, string path, CancellationToken ct)
    {
        await client.SendAsync($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n", ct);
        var (status, body) = await client.ReadResponseAsync(ct);
        Assert.Equal(200, status);
        return body;
    }

    /// <summary>
    /// A hold reported: when the handler returned (88), or by the watch while it still ran (89); a 300 ms sleep may be
    /// either, depending on where the watch's ticks fall.
    /// </summary>
    private static bool IsHoldReport(LogEntry entry) => entry.EventId.Id is EventLoopBlocked or EventLoopTakenOver;

    private static string Field(LogEntry entry, string name) =>
        entry.State.FirstOrDefault(p => p.Key == name).Value ?? throw new Xunit.Sdk.XunitException($"{entry} has no {name}.");

    private static int SyncWriteBytes()
    {
        static long Largest(string sysctl) => long.Parse(File.ReadAllText(sysctl).Split('\t', ' ').Last(w => w.Length > 0).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var buffers = Largest("/proc/sys/net/ipv4/tcp_wmem") + Largest("/proc/sys/net/ipv4/tcp_rmem");
        return (int)Math.Max(32L << 20, ((2 * buffers) + (1 << 20) - 1) & ~((1L << 20) - 1));
    }

    /// <summary>The loop was held past the threshold before the scenario held it: not the scenario's doing.</summary>
    private sealed class HeldTooSoonException(LogEntry held) : Exception($"The loop was held before the scenario's own hold: {held}");

    private sealed class HoldGate : IDisposable
    {
        public TaskCompletionSource<string> Entered { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ManualResetEventSlim Release { get; } = new();

        /// <summary>The managed thread the held request entered on.</summary>
        public int ThreadId { get; set; }

        /// <summary>For the next request, once the last one has been answered.</summary>
        public void Reset()
        {
            Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
            Release.Reset();
        }

        public void Dispose() => Release.Dispose();
    }
}
