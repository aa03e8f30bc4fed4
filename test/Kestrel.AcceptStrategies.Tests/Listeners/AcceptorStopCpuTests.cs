using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// An acceptor that was backing off for want of descriptors when its listener unbound: its thread must idle through
/// the graceful stop that follows, not poll with a timeout that has already run out.
/// </summary>
public sealed partial class AcceptorStopCpuTests(ITestOutputHelper output)
{
    private const int RLIMIT_NOFILE = 7;
    private const int ESRCH = 3;
    private const int PartialConnections = 80;
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);
    private const double MaxCoreShare = 0.05;
    private const int MaxAttempts = 3;

    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.Serialized)]
    public async Task GracefulStop_AfterOutOfDescriptorsBackoff_AcceptorThreadsIdle(AcceptStrategy strategy)
    {
        // With every descriptor in use, the runtime itself can fail (the process aborts printing "Out of memory."): that
        // is the runtime's, not the acceptors', so a fresh server is tried.
        for (var attempt = 1; ; attempt++)
        {
            var aborted = await RunOnceAsync(strategy);
            if (aborted is null)
            {
                return;
            }

            output.WriteLine($"Attempt {attempt}: the runtime aborted while out of descriptors:\n{aborted}");
            Assert.True(attempt < MaxAttempts, $"The server aborted out of descriptors in each of {MaxAttempts} attempts; the last:\n{aborted}");
        }
    }

    /// <summary>One server through the scenario; the server's output if the runtime aborted while out of descriptors, else null.</summary>
    private async Task<string?> RunOnceAsync(AcceptStrategy strategy)
    {
        await using var server = ChildProcess.StartBenchmarkAppWithJsonLogs(
            $"--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy={strategy} --AcceptStrategy:Acceptors=2");
        var address = await server.WaitForListeningAsync();
        var endPoint = new IPEndPoint(IPAddress.Loopback, address.Port);
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(address, "/foo?foo=warm")));

        // A request in flight keeps the graceful stop going for seconds after the listener unbinds.
        using var slowClient = Load.CreateClient();
        var slow = slowClient.GetStringAsync(new Uri(address, "/slow?ms=15000"));
        await server.WaitForLineAsync(l => l.Contains("slow: started in", StringComparison.Ordinal), TestServer.Timeout);

        // Leave the server 30 descriptors, then send more connections than that, each with half a request so it is
        // accepted (TCP_DEFER_ACCEPT holds back connections without data) and held by Kestrel: the acceptors run out.
        var original = GetLimit(server.Id);
        var open = Directory.GetFiles($"/proc/{server.Id}/fd").Length;
        SetLimit(server.Id, original with { Current = (ulong)open + 30 });
        var clients = new List<Socket>();
        ExceptionDispatchInfo? failure = null;
        try
        {
            try
            {
                for (var i = 0; i < PartialConnections; i++)
                {
                    var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    clients.Add(client);
                    await client.ConnectAsync(endPoint).WaitAsync(TestServer.Timeout);
                    await client.SendAsync("GET /foo HTTP/1.1\r\nHost: x\r\n"u8.ToArray());
                }

                var storm = await server.WaitForEventAsync(LogEvents.AcceptError, null, TestServer.Timeout);
                Assert.Equal("TooManyOpenSockets", storm["Error"]);

                // The first error is logged with a back-off of 5 ms, which doubles per failure up to 500 ms: with so
                // short a back-off the acceptors take descriptors back before the stop reaches them.
                await WaitUntilLongBackoffAsync(server.Id);
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                // Descriptors again, so the stop has what it needs (without, the runtime aborts: "Out of memory."), and
                // so a server that failed the test is not starved into that abort while it is looked at.
                SetLimit(server.Id, original);
            }

            if (failure is not null)
            {
                if (!await server.RuntimeAbortedAsync())
                {
                    failure.Throw();
                }

                return server.Output;
            }

            WorkerGroup.Kill(server.Id, "TERM");
            await server.WaitForLineAsync(l => l.Contains("Application is shutting down", StringComparison.Ordinal), TestServer.Timeout);
            await WaitUntilNotListeningAsync(server.Id, address.Port);

            var before = AcceptorCpuTicks(server.Id);
            var started = Stopwatch.GetTimestamp();
            await Task.Delay(Window);
            var after = AcceptorCpuTicks(server.Id);
            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;

            // Measured during the graceful stop, not after the process ended.
            Assert.False(server.HasExited, $"The server exited before the measurement ended:\n{server.Output}");
            Assert.False(slow.IsCompleted, "The in-flight request ended before the measurement did; the stop was not under way throughout.");

            var shares = after.Where(a => before.ContainsKey(a.Key))
                .ToDictionary(a => a.Key, a => (a.Value - before[a.Key]) / (double)ClockTicksPerSecond / elapsed);
            var measured = string.Join(", ", shares.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Key} {s.Value:P0}")));
            output.WriteLine($"{strategy}: {measured}");
            Assert.True(
                shares.Values.All(s => s <= MaxCoreShare),
                $"{strategy}: acceptor threads during the graceful stop used {(measured.Length == 0 ? "nothing (none left)" : measured)} of a core (at most {MaxCoreShare:P0} each expected)");
            return null;
        }
        finally
        {
            // The server, still stopping, is killed on dispose; the in-flight request fails with it.
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>CPU time (clock ticks) of each acceptor thread (<c>acc:PORT#N</c>) of <paramref name="pid"/>, by name.</summary>
    private static Dictionary<string, long> AcceptorCpuTicks(int pid)
    {
        var ticks = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                if (!name.StartsWith("acc:", StringComparison.Ordinal))
                {
                    continue;
                }

                // Fields after "(comm)": state is field 3, utime and stime fields 14 and 15.
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                ticks[$"{name} (tid {Path.GetFileName(task)})"] =
                    long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The thread ended while listed.
            }
        }

        return ticks;
    }

    /// <summary>
    /// Until every acceptor thread of <paramref name="pid"/> is blocked in <c>epoll_wait</c> or <c>poll</c> with a
    /// timeout of at least 250 ms (<c>/proc/PID/task/TID/syscall</c>): a back-off near its cap. Bounded; a wait this
    /// does not recognise (another architecture, another way to back off) is not waited for.
    /// </summary>
    private async Task WaitUntilLongBackoffAsync(int pid)
    {
        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var timeouts = new List<long>();
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(task, "comm")).StartsWith("acc:", StringComparison.Ordinal))
                    {
                        // "NR ARG0 ... ARG5 SP PC" (hexadecimal arguments) while blocked in a system call, "running" otherwise.
                        var fields = File.ReadAllText(Path.Combine(task, "syscall")).Split(' ');
                        timeouts.Add(fields.Length > 6 && long.TryParse(fields[0], CultureInfo.InvariantCulture, out var nr) && TimeoutArgument.TryGetValue(nr, out var arg)
                            ? (int)Convert.ToUInt64(fields[1 + arg], 16)
                            : -1);
                    }
                }
                catch (IOException)
                {
                    // The thread ended while listed.
                }
            }

            if (timeouts.Count > 0 && timeouts.All(t => t >= 250))
            {
                return;
            }

            await Task.Delay(20);
        }

        output.WriteLine("No long back-off seen in the acceptors' waits; going on.");
    }

    /// <summary>Until no socket of <paramref name="pid"/>'s network namespace listens on <paramref name="port"/> (the acceptors have all seen the stop).</summary>
    private static async Task WaitUntilNotListeningAsync(int pid, int port)
    {
        var local = string.Create(CultureInfo.InvariantCulture, $":{port:X4} ");
        var deadline = Stopwatch.GetTimestamp() + (long)(TestServer.Timeout.TotalSeconds * Stopwatch.Frequency);
        // /proc/net/tcp: "sl local_address rem_address st ...", state 0A is LISTEN.
        while (File.ReadLines($"/proc/{pid}/net/tcp").Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(f => (f[1] + " ").EndsWith(local, StringComparison.Ordinal) && f[3] == "0A"))
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, $"Port {port} still listening {TestServer.Timeout} after SIGTERM.");
            await Task.Delay(20);
        }
    }

    private static Limit GetLimit(int pid)
    {
        return Prlimit(pid, RLIMIT_NOFILE, IntPtr.Zero, out var old) == 0 ? old : throw new IOException($"prlimit({pid}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    private static void SetLimit(int pid, Limit limit)
    {
        // ESRCH: the process has gone (the runtime aborted), nothing to restore.
        if (Prlimit(pid, RLIMIT_NOFILE, limit, IntPtr.Zero) != 0 && Marshal.GetLastPInvokeError() != ESRCH)
        {
            throw new IOException($"prlimit({pid}, {limit}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static long ClockTicksPerSecond { get; } = Sysconf(2 /* _SC_CLK_TCK */);

    /// <summary>System call number to the index of its millisecond timeout argument: epoll_wait, epoll_pwait, poll.</summary>
    private static Dictionary<long, int> TimeoutArgument { get; } = RuntimeInformation.ProcessArchitecture == Architecture.Arm64
        ? new() { [22] = 3 }
        : new() { [232] = 3, [281] = 3, [7] = 2 };

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Limit(ulong Current, ulong Maximum);

    [LibraryImport("libc", EntryPoint = "prlimit", SetLastError = true)]
    private static partial int Prlimit(int pid, int resource, IntPtr newLimit, out Limit oldLimit);

    [LibraryImport("libc", EntryPoint = "prlimit", SetLastError = true)]
    private static partial int Prlimit(int pid, int resource, in Limit newLimit, IntPtr oldLimit);

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long Sysconf(int name);
}
