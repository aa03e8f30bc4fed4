using System.Net.Sockets;
using System.Text;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Perf.Tests;

/// <summary>
/// perf/UringProbe, the io_uring-against-epoll measurement: each engine answers kept-alive and pipelined requests on
/// real connections, or (io_uring disabled on the machine) exits saying so; a bad argument is one clear error.
/// </summary>
public sealed class UringProbeTests
{
    private static readonly string s_probePath = BuildPaths.Of("UringProbePath");

    [Theory]
    [InlineData("epoll")]
    [InlineData("uring")]
    [InlineData("uring --setup=coop")]
    [InlineData("uring --setup=none")]
    public async Task EachEngine_AnswersKeptAliveAndPipelinedRequests(string engine)
    {
        await using var probe = ChildProcess.StartBenchmarkApp($"--urls=http://127.0.0.1:0 --engine={engine}", appPath: s_probePath);
        var line = await probe.WaitForLineAsync(l => l.Contains("Now listening on:", StringComparison.Ordinal) || l.Contains("io_uring_setup:", StringComparison.Ordinal), TestServer.Timeout);
        if (engine.StartsWith("uring", StringComparison.Ordinal) && line.Contains("io_uring_setup:", StringComparison.Ordinal))
        {
            // A machine (or container) without io_uring: the probe says why and what to check, and exits.
            await probe.WaitForExitAsync(TestServer.Timeout);
            Assert.Equal(2, probe.ExitCode);
            Assert.True(
                line.Contains("kernel.io_uring_disabled", StringComparison.Ordinal) || line.Contains("try --setup=none", StringComparison.Ordinal),
                line);
            return;
        }

        var address = await probe.WaitForListeningAsync();
        using var cts = new CancellationTokenSource(TestServer.Timeout);
        using var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await first.ConnectAsync("127.0.0.1", address.Port, cts.Token);
        await second.ConnectAsync("127.0.0.1", address.Port, cts.Token);

        const string request = "GET /foo HTTP/1.1\r\nHost: x\r\n\r\n";
        await first.SendAsync(Encoding.ASCII.GetBytes(request), cts.Token);
        Assert.Equal(1, await ResponsesAsync(first, 1, cts.Token));

        // Two requests in one write, the second's empty line split across two writes on the other connection.
        await first.SendAsync(Encoding.ASCII.GetBytes(request + request), cts.Token);
        await second.SendAsync(Encoding.ASCII.GetBytes(request[..^3]), cts.Token);
        Assert.Equal(2, await ResponsesAsync(first, 2, cts.Token));
        await second.SendAsync(Encoding.ASCII.GetBytes(request[^3..]), cts.Token);
        Assert.Equal(1, await ResponsesAsync(second, 1, cts.Token));
    }

    [Theory]
    [InlineData("--engine=kqueue", "--engine=kqueue: epoll or uring")]
    [InlineData("--engine=uring --setup=sqpoll", "--setup=sqpoll: defer, coop, none")]
    public async Task ABadArgument_IsOneClearError(string arguments, string error)
    {
        await using var probe = ChildProcess.StartBenchmarkApp($"--urls=http://127.0.0.1:0 {arguments}", appPath: s_probePath);

        await probe.WaitForExitAsync(TestServer.Timeout);

        Assert.Equal(2, probe.ExitCode);
        Assert.Contains(error, probe.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", probe.Output, StringComparison.Ordinal);
    }

    /// <summary>Reads until <paramref name="expected"/> whole responses came; how many did.</summary>
    private static async Task<int> ResponsesAsync(Socket socket, int expected, CancellationToken ct)
    {
        var received = new StringBuilder();
        var buffer = new byte[4096];
        int count;
        while ((count = CountOf(received.ToString())) < expected)
        {
            var n = await socket.ReceiveAsync(buffer, ct);
            if (n == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", received.ToString(), StringComparison.Ordinal);
        return count;
    }

    private static int CountOf(string text)
    {
        var count = 0;
        for (var at = text.IndexOf("Hello, World!", StringComparison.Ordinal); at >= 0; at = text.IndexOf("Hello, World!", at + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
