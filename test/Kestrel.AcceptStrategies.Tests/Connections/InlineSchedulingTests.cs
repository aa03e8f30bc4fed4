using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// <c>UnsafePreferInlineScheduling</c> on the event loops, in a real host: a kept-alive connection's next request runs
/// on the loop's thread; a handler that holds the loop for the threshold is logged once (event 88), after which that
/// loop's requests run on the thread pool, so a second connection is served while one handler blocks, and the other
/// loops go on running theirs.
/// </summary>
public sealed class InlineSchedulingTests
{
    private const int EventLoopBlocked = 88;

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
        Assert.Equal("EventLoopBlocked", blocked.EventId.Name);
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

        Assert.Single(logs.Entries, e => e.EventId.Id == EventLoopBlocked);
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
            Assert.Single(logs.Entries, e => e.EventId.Id == EventLoopBlocked);
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

        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == EventLoopBlocked);
    }

    private static async Task<TestServer> StartAsync(AcceptStrategy strategy, bool inline, CapturedLogs logs, HoldGate hold, int acceptors = 1)
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
            });

        // Where a request ran: "pool" for a thread-pool thread, else the thread's name (an event loop's is acc:PORT#N).
        static string Where() => Thread.CurrentThread.IsThreadPoolThread ? "pool" : Thread.CurrentThread.Name ?? "unnamed";
        app.MapGet("/where", Where);
        app.MapGet("/block", () =>
        {
            Thread.Sleep(300);
            return Where();
        });
        app.MapGet("/hold", () =>
        {
            hold.Entered.TrySetResult(Where());
            Assert.True(hold.Release.Wait(TestServer.Timeout), "/hold was never released");
            return "held";
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
            if (logs.Entries.FirstOrDefault(e => e.EventId.Id == EventLoopBlocked) is { } logged)
            {
                return logged;
            }

            // The answer is where the request ran; the loop logs after it returns, which is after the answer was sent.
            var answer = await RequestAsync(client, "/block", ct);
            if (answer != "pool")
            {
                return await logs.WaitForAsync(e => e.EventId.Id == EventLoopBlocked, TimeSpan.FromSeconds(10), "EventLoopBlocked");
            }
        }

        throw new Xunit.Sdk.XunitException("/block never ran on the loop in 20 requests.");
    }

    private static async Task<string> RequestAsync(RawHttpClient client, string path, CancellationToken ct)
    {
        await client.SendAsync($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n", ct);
        var (status, body) = await client.ReadResponseAsync(ct);
        Assert.Equal(200, status);
        return body;
    }

    private static string Field(LogEntry entry, string name) =>
        entry.State.FirstOrDefault(p => p.Key == name).Value ?? throw new Xunit.Sdk.XunitException($"{entry} has no {name}.");

    private sealed class HoldGate : IDisposable
    {
        public TaskCompletionSource<string> Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ManualResetEventSlim Release { get; } = new();

        public void Dispose() => Release.Dispose();
    }
}
