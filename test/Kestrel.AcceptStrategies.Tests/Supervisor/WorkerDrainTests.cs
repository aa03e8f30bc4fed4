using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// How a draining worker lets go of its connections: clients that would keep it alive (HTTP/2, silent or slow
/// connections) must not, and requests already running must still finish.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerDrainTests
{
    // Far above any bound asserted here: a worker that exits sooner was let go by the drain, not by the timeout.
    private const string LongGrace = "--WorkerProcesses:GracefulShutdownTimeout=00:00:30";
    private static readonly TimeSpan DrainBound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Sighup_Http2ClientOnOneConnection_OldWorkersExitPromptlyEveryRequestSucceeds()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, $"--Kestrel:EndpointDefaults:Protocols=Http2 {LongGrace}");
        var old = group.Ready.Select(r => r.Pid).ToList();

        using var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = false, ConnectTimeout = TimeSpan.FromSeconds(10) };
        using var client = new HttpClient(handler)
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(20),
        };
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var answers = new System.Collections.Concurrent.ConcurrentQueue<int>();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // One h2c connection, one request after the other: it pins whichever worker accepted it.
        var load = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var answer = await client.GetStringAsync(new Uri(group.Address, "/whoami"), CancellationToken.None);
                    answers.Enqueue(int.Parse(answer.Split(' ')[1], CultureInfo.InvariantCulture));
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    failures.Enqueue(e.ToString());
                }

                if (answers.Count == 20)
                {
                    loaded.TrySetResult();
                }
            }
        });

        await loaded.Task.WaitAsync(TestServer.Timeout);
        group.Signal("HUP");
        var exitedAfterDrain = await WaitForDrainedExitsAsync(group, old, "reload", TimeSpan.FromSeconds(60));
        var answeredBefore = answers.Count;
        await WaitForAsync(() => answers.Count >= answeredBefore + 20, TestServer.Timeout);
        await stop.CancelAsync();
        await load.WaitAsync(TestServer.Timeout);

        Assert.True(failures.IsEmpty, $"{failures.Count} request(s) failed:\n{string.Join('\n', failures.Take(3))}");
        Assert.All(exitedAfterDrain, e => Assert.True(
            e.Value < DrainBound, $"worker {e.Key} exited {e.Value.TotalSeconds:0.0} s after it began to drain.\n{group.Supervisor.Output}"));
        Assert.All(answers.Skip(answeredBefore), pid => Assert.DoesNotContain(pid, old));
    }

    [Fact]
    public async Task Sighup_SilentAndHalfRequestConnections_OldWorkersExitPromptlySlowRequestCompletes()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ThunderingHerd, LongGrace);
        var old = group.Ready.Select(r => r.Pid).ToList();
        using var client = Load.CreateClient();
        var slow = client.GetAsync(new Uri(group.Address, "/slow?ms=3000"));
        await group.WaitUntilAsync(g => g.Supervisor.Output.Contains("slow: started", StringComparison.Ordinal), TestServer.Timeout, "the slow request under way");

        // Connections that never finish a request head: silent ones, half a request line, half the headers.
        var sockets = new List<System.Net.Sockets.Socket>();
        try
        {
            string[] partial = ["", "", "", "G", "G", "GET /fo", "GET /foo HT", "GET /foo HTTP/1.1\r\n", "GET /foo HTTP/1.1\r\nHost: x\r\n", "GET /foo HTTP/1.1\r\nHost: x\r\nX-A: 1"];
            foreach (var text in partial)
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                sockets.Add(socket);
                await socket.ConnectAsync(group.Address.Host, group.Address.Port);
                if (text.Length > 0)
                {
                    await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(text));
                }
            }

            // Every connection that sent something is held by an old worker (silent ones may wait in the kernel
            // under TCP_DEFER_ACCEPT) before the reload begins.
            await WaitForAsync(() => ServerSideConnections(group.Address.Port, old) >= 7 + 1, TestServer.Timeout);

            group.Signal("HUP");
            var exitedAfterDrain = await WaitForDrainedExitsAsync(group, old, "reload", TimeSpan.FromSeconds(60));

            using var response = await slow.WaitAsync(TestServer.Timeout);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("done", await response.Content.ReadAsStringAsync());
            Assert.All(exitedAfterDrain, e => Assert.True(
                e.Value < DrainBound, $"worker {e.Key} exited {e.Value.TotalSeconds:0.0} s after it began to drain.\n{group.Supervisor.Output}"));
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Established connections to <paramref name="port"/> whose server side one of <paramref name="pids"/> holds.</summary>
    private static int ServerSideConnections(int port, IReadOnlyList<int> pids)
    {
        using var ss = Process.Start(new ProcessStartInfo("ss", ["-Htnp", "state", "established", "sport", "=", $":{port}"]) { RedirectStandardOutput = true })!;
        var output = ss.StandardOutput.ReadToEnd();
        ss.WaitForExit(5_000);
        return output.Split('\n').Count(l => pids.Any(p => l.Contains($"pid={p},", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Waits until every worker in <paramref name="pids"/> has logged that it drains and has exited for
    /// <paramref name="reason"/>; returns, per pid, the time from the one line to the other (as seen here).
    /// </summary>
    internal static async Task<Dictionary<int, TimeSpan>> WaitForDrainedExitsAsync(WorkerGroup group, IReadOnlyList<int> pids, string reason, TimeSpan timeout)
    {
        var drainSeen = new Dictionary<int, long>();
        var exitSeen = new Dictionary<int, long>();
        await group.WaitUntilAsync(
            g =>
            {
                var output = g.Supervisor.Output;
                var exited = g.Exited;
                var now = Stopwatch.GetTimestamp();
                foreach (var pid in pids)
                {
                    if (!drainSeen.ContainsKey(pid) && output.Contains($"Worker {pid} stops accepting", StringComparison.Ordinal))
                    {
                        drainSeen[pid] = now;
                    }

                    if (!exitSeen.ContainsKey(pid) && exited.Any(e => e.Pid == pid && e.Reason == reason))
                    {
                        drainSeen.TryAdd(pid, now);
                        exitSeen[pid] = now;
                    }
                }

                return exitSeen.Count == pids.Count;
            },
            timeout,
            $"workers {string.Join(", ", pids)} drained and exited ({reason})");
        return pids.ToDictionary(p => p, p => Stopwatch.GetElapsedTime(drainSeen[p], exitSeen[p]));
    }

    internal static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + Timestamps.Units(timeout, Stopwatch.Frequency);
        while (!condition())
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, $"not reached within {timeout}");
            await Task.Delay(20);
        }
    }
}
