using System.Collections.Concurrent;
using System.Globalization;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// A Unix socket beside a TCP endpoint in worker mode, as behind nginx: one socket the supervisor binds and every
/// worker shares (Linux has no SO_REUSEPORT for AF_UNIX), served by real workers under each strategy and across a reload.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class UnixEndpointTests
{
    [Theory]
    [InlineData(AcceptStrategy.ReusePort)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.Serialized)]
    public async Task UnixAndTcp_TwoWorkers_BothServedByWorkersAcrossSighup_NoFailedRequest(AcceptStrategy strategy)
    {
        var directory = Directory.CreateTempSubdirectory("kas-unix-").FullName;
        var path = Path.Combine(directory, "app.sock");
        try
        {
            await using var group = await WorkerGroup.StartAsync(2, strategy, urls: $"http://127.0.0.1:0;http://unix:{path}");
            using var unix = Load.CreateUnixClient(path);
            using var tcp = Load.CreateClient();
            var tcpAddress = group.Addresses.Single(a => a.Host == "127.0.0.1");

            // Served by a worker, never by the supervisor.
            var first = Worker(await unix.GetStringAsync(new Uri("http://localhost/whoami")));
            Assert.Contains(first, group.Ready.Select(r => r.Pid));
            Assert.Equal(strategy == AcceptStrategy.ReusePort ? 1 : 0, group.EventsOf(LogEvents.UnixEndpointShared).Count);

            // Both endpoints under load while every worker is replaced.
            var answers = new ConcurrentQueue<(string Endpoint, int Pid)>();
            var failures = new ConcurrentQueue<string>();
            HashSet<int>? reloaded = null;
            var fromNewWorkers = 0;
            var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            var loops = new[] { ("unix", unix, new Uri("http://localhost/whoami")), ("tcp", tcp, new Uri(tcpAddress, "/whoami")) }
                .SelectMany(c => Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        try
                        {
                            var pid = Worker(await c.Item2.GetStringAsync(c.Item3, CancellationToken.None));
                            answers.Enqueue((c.Item1, pid));
                            if (c.Item1 == "unix" && Volatile.Read(ref reloaded) is { } fresh && fresh.Contains(pid) && Interlocked.Increment(ref fromNewWorkers) >= 20)
                            {
                                enough.TrySetResult();
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                        {
                            failures.Enqueue($"{c.Item1}: {e.Message}");
                        }
                    }
                })))
                .ToList();

            group.Signal("HUP");
            await group.WaitUntilAsync(g => g.Exited.Count(e => e.Reason == "reload") == 2, TestServer.Timeout, "both workers replaced");
            var replacements = group.Started.Where(s => s.Reason == "reload").Select(s => s.Pid).ToHashSet();
            Volatile.Write(ref reloaded, replacements);
            await enough.Task.WaitAsync(TestServer.Timeout);
            await stop.CancelAsync();
            await Task.WhenAll(loops).WaitAsync(TestServer.Timeout);

            Assert.True(failures.IsEmpty, $"{failures.Count} request(s) failed: {string.Join("; ", failures.Take(3))}");
            Assert.Contains(answers, a => a.Endpoint == "tcp" && replacements.Contains(a.Pid));
            Assert.DoesNotContain(answers, a => a.Pid == group.Supervisor.Id);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static int Worker(string whoami)
    {
        var parts = whoami.Split(' ');
        Assert.Equal("Worker", parts[0]);
        return int.Parse(parts[1], CultureInfo.InvariantCulture);
    }

}
