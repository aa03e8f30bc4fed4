using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// An event loop that stops listening on a socket other loops (a ReusePort slot's next generation, ThunderingHerd
/// loops of other workers) go on listening on. The kernel wakes one EPOLLEXCLUSIVE waiter per connection: a connection
/// that woke the leaving loop just before its stop was seen must not wait, unseen by the others, for the next
/// connection to wake one of them (an HTTP/2 client that reconnected during a reload waited there until its timeout).
/// </summary>
public sealed partial class EventLoopLeaveTests
{
    private static int s_tests;

    [Theory]
    [InlineData(AcceptStrategy.ReusePort, false)]
    [InlineData(AcceptStrategy.ThunderingHerd, false)]
    [InlineData(AcceptStrategy.ThunderingHerd, true)]
    public async Task Leave_ConnectionThatWokeTheLeavingLoop_IsHandedOverNotLeftInTheQueue(AcceptStrategy strategy, bool unixSocket)
    {
        await using var services = ListenerServices.Create(strategy, acceptors: 1);
        var factory = services.GetRequiredService<AcceptStrategyListenerFactory>();
        var socketOptions = new SocketTransportOptions();
        var directory = unixSocket ? Directory.CreateTempSubdirectory("kas-leave-").FullName : null;
        var shared = directory is null
            ? ListenSocketBinder.Bind(new IPEndPoint(IPAddress.Loopback, 0), strategy, 1, deferAccept: true, socketOptions)[0]
            : ListenSocketBinder.BindUnix(new UnixDomainSocketEndPoint(Path.Combine(directory, "s.sock")), socketOptions);
        var endPoint = shared.LocalEndPoint!;
        var name = Interlocked.Increment(ref s_tests).ToString(CultureInfo.InvariantCulture);

        // The leaving loop registers the socket first, so it is first in the socket's wait queue, as a worker is ahead
        // of the successor that inherits its sockets.
        using var stop = new StopSignal();
        using var shutdown = new StopSignal();
        using var disposing = new CancellationTokenSource();
        using var settings = new NativeConnectionSettings(null, socketOptions, NullLogger.Instance);
        var handedOver = Channel.CreateBounded<ConnectionContext>(4);
        var context = new AcceptorContext(
            endPoint, strategy, stop, handedOver.Writer, services.GetRequiredService<AcceptStrategyMetrics>(), NullLogger.Instance, null, disposing.Token);
        var leaving = new EventLoop(0, shared, settings, shutdown, context);
        TaskCompletionSource? leavingEnded = null;

        await using var remaining = factory.Create([ListenSocketBinder.Duplicate(shared)], strategy, 1, null, null);
        remaining.Start();
        using var client = new Socket(endPoint.AddressFamily, SocketType.Stream, unixSocket ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            // The leaving loop's thread, asleep in epoll_wait when the connection comes, takes the kernel's one wake-up
            // for it: a stand-in thread waits in the loop's epoll set, so the loop itself can see the wake-up and its
            // stop together, as a loop on a busy machine does when its thread runs only after the stop was set.
            var epollFd = EpollFdWatching(stop.Fd);
            var woken = (Count: -1, Data: ulong.MaxValue);
            var standIn = new Thread(() => woken = WaitOnce(epollFd, TestServer.Timeout))
            {
                IsBackground = true,
                Name = $"leave:{name}",
            };
            standIn.Start();
            await WaitInEpollAsync(standIn.Name);

            await client.ConnectAsync(endPoint);
            await client.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            Assert.True(standIn.Join(TestServer.Timeout), "the connection did not wake the leaving loop's epoll set");
            Assert.Equal((1, 0UL), woken); // the listening socket's registration (EventLoop.ListenToken)

            stop.Set();
            leavingEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            leaving.Start($"acc:leave{name}", leavingEnded.SetResult);

            // Handed to Kestrel by either: the leaving loop, or the loop that stays had it been woken.
            using var cancel = new CancellationTokenSource(TestServer.Timeout);
            var byLeaving = handedOver.Reader.ReadAsync(cancel.Token).AsTask();
            var byRemaining = remaining.AcceptAsync(cancel.Token).AsTask();
            var first = await Task.WhenAny((Task)byLeaving, byRemaining);
            Assert.False(first.IsCanceled, $"the connection was left in the queue of {endPoint} for {TestServer.Timeout}: nobody accepted it");
            await using var connection = first == byLeaving ? await byLeaving : await byRemaining;
            Assert.NotNull(connection);
            if (!unixSocket)
            {
                Assert.Equal(client.LocalEndPoint, connection.RemoteEndPoint);
            }
            await leaving.ListeningEnded.Task.WaitAsync(TestServer.Timeout);
        }
        finally
        {
            disposing.Cancel();
            shutdown.Set();
            if (leavingEnded is null || await Task.WhenAny(leavingEnded.Task, Task.Delay(TestServer.Timeout)) == leavingEnded.Task)
            {
                leaving.Dispose();
            }

            shared.Dispose();
            if (directory is not null)
            {
                Directory.Delete(directory, recursive: true);
            }

            while (handedOver.Reader.TryRead(out var orphan))
            {
                await orphan.DisposeAsync();
            }
        }
    }

    private static unsafe (int Count, ulong Data) WaitOnce(int epollFd, TimeSpan timeout)
    {
        using var events = new EpollEventBuffer(1);
        var n = Libc.EpollWait(epollFd, events.Pointer, 1, (int)timeout.TotalMilliseconds);
        return (n, n > 0 ? events[0].Data : ulong.MaxValue);
    }

    /// <summary>The epoll set of this process that has <paramref name="fd"/> registered, from <c>/proc/self/fdinfo</c>.</summary>
    private static int EpollFdWatching(int fd)
    {
        foreach (var path in Directory.GetFiles("/proc/self/fdinfo"))
        {
            string info;
            try
            {
                info = File.ReadAllText(path);
            }
            catch (IOException)
            {
                continue;
            }

            if (TargetFd().Matches(info).Any(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) == fd))
            {
                return int.Parse(Path.GetFileName(path), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"No epoll set of this process watches descriptor {fd}.");
    }

    /// <summary>Waits (bounded) until the thread named <paramref name="name"/> sleeps in epoll_wait.</summary>
    private static async Task WaitInEpollAsync(string name)
    {
        var deadline = DateTime.UtcNow + TestServer.Timeout;
        while (true)
        {
            foreach (var task in Directory.GetDirectories("/proc/self/task"))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == name
                        && File.ReadAllText(Path.Combine(task, "stat")).Split(')')[1].TrimStart().StartsWith('S')
                        && File.ReadAllText(Path.Combine(task, "wchan")) is var wchan
                        && (wchan.Contains("epoll", StringComparison.Ordinal) || wchan.Contains("ep_poll", StringComparison.Ordinal)))
                    {
                        return;
                    }
                }
                catch (IOException)
                {
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"thread {name} not waiting in epoll_wait after {TestServer.Timeout}");
            await Task.Delay(10);
        }
    }

    [GeneratedRegex(@"^tfd:\s+(\d+)\s", RegexOptions.Multiline)]
    private static partial Regex TargetFd();
}
