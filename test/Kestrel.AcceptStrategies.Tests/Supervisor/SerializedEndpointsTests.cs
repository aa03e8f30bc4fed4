using System.Net;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// Serialized workers with several endpoints: an acceptor waits for connections while it holds its accept lock, so
/// an endpoint whose acceptors share a lock with a quiet one (HTTPS beside HTTP, an admin port) starves.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SerializedEndpointsTests
{
    private const int Requests = 20;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Serialized_TwoEndpointsOneQuiet_EveryRequestToTheBusyOneAnsweredWithinTwoSeconds(int workers)
    {
        await using var group = await StartTwoEndpointsAsync(workers);
        var (busy, quiet) = (group.Addresses[0], group.Addresses[1]);

        var busyAnswered = await AnsweredInTimeAsync(busy, Requests);
        var quietAnswered = await AnsweredInTimeAsync(quiet, 5);

        Assert.True(busyAnswered == Requests, $"{busyAnswered} of {Requests} requests to {busy} answered within {Limit} ({workers} worker(s); {quiet} kept quiet)");
        Assert.True(quietAnswered == 5, $"{quietAnswered} of 5 requests to the quiet {quiet} answered within {Limit} afterwards");
    }

    [Fact]
    public async Task Serialized_TwoEndpoints_WorkersRespawnedByReloadAndRecycleHoldEachEndpointsLock()
    {
        await using var group = await StartTwoEndpointsAsync(2, "--WorkerProcesses:MaxRequestsPerWorker=8 --ChildFdProbe=true");
        var (busy, quiet) = (group.Addresses[0], group.Addresses[1]);
        var first = group.Ready.ToList();

        group.Signal("HUP");
        await group.WaitUntilAsync(
            g => first.All(w => g.Exited.Any(e => e.Pid == w.Pid && e.Reason == "reload")) && g.Ready.Count(r => r.Generation > 1) >= 2,
            TimeSpan.FromSeconds(40),
            "both workers replaced by reloaded ones that are ready");

        // Budgets of at most 8 requests: the busy endpoint's requests recycle workers as they go.
        var busyAnswered = await AnsweredInTimeAsync(busy, Requests);
        Assert.True(busyAnswered == Requests, $"{busyAnswered} of {Requests} requests to {busy} answered within {Limit} after the reload, while workers recycled");
        await group.WaitUntilAsync(
            g => g.Exited.Any(e => e.Reason == "recycled") && g.LivePids.Count(p => g.Ready.Any(r => r.Pid == p)) >= 2,
            TestServer.Timeout,
            "a worker recycled and two ready workers serving");
        Assert.Equal(3, await AnsweredInTimeAsync(quiet, 3));

        // The supervisor keeps one unlinked lock file per endpoint; every worker it respawned holds exactly those
        // (inherited, and opened again by its acceptors), and starts no process that inherits one.
        var supervisorLocks = LockFiles(group.Supervisor.Id)!;
        Assert.Equal(2, supervisorLocks.Count);
        Assert.All(supervisorLocks, l => Assert.EndsWith("/accept.lock (deleted)", l, StringComparison.Ordinal));
        // A recycled worker may still be draining beside its replacement (and gone by the time it is looked at).
        var respawned = group.LivePids.Intersect(group.Ready.Where(r => r.Generation > 1).Select(r => r.Pid)).ToList();
        Assert.True(respawned.Count >= 2, $"{respawned.Count} respawned workers alive");
        foreach (var pid in respawned)
        {
            var held = LockFiles(pid);
            if (held is { Count: 0 })
            {
                // A worker that stopped accepting (recycled meanwhile) closes its locks, and one that is exiting has
                // closed every descriptor before it is gone: not a worker that lost its locks, if it says so in time.
                await group.WaitUntilAsync(
                    g => g.EventsOf(LogEvents.WorkerDraining).Any(e => e.Int("Pid") == pid) || g.Exited.Any(e => e.Pid == pid),
                    TestServer.Timeout,
                    $"worker {pid}, which holds no accept lock, draining or gone");
                continue;
            }

            Assert.Equal(supervisorLocks, held ?? supervisorLocks);
        }

        await group.WaitUntilAsync(
            g => g.Ready.Where(r => r.Generation > 1).Count(r => g.Supervisor.Lines.Any(l => l.Contains($"children checked in pid {r.Pid}", StringComparison.Ordinal))) >= 2,
            TestServer.Timeout,
            "the fd probe ran in two respawned workers");
        Assert.DoesNotContain("fd-probe: leaked", group.Supervisor.Output, StringComparison.Ordinal);
    }

    private static async Task<WorkerGroup> StartTwoEndpointsAsync(int workers, string arguments = "")
    {
        var group = await WorkerGroup.StartAsync(workers, AcceptStrategy.Serialized, arguments, urls: "http://127.0.0.1:0;http://127.0.0.1:0", acceptors: 1);
        try
        {
            // Kestrel logs every endpoint it bound before the supervisor starts a worker.
            Assert.Equal(2, group.Addresses.Count);
            return group;
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends <paramref name="count"/> GETs one after the other, each on a new connection (so each needs an accept); how many were answered within <see cref="Limit"/>.</summary>
    private static async Task<int> AnsweredInTimeAsync(Uri address, int count)
    {
        using var client = Load.CreateClient();
        var answered = 0;
        for (var i = 0; i < count; i++)
        {
            using var timeout = new CancellationTokenSource(Limit);
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(address, $"/foo?foo={i}"));
            request.Headers.ConnectionClose = true;
            try
            {
                using var response = await client.SendAsync(request, timeout.Token);
                if (response.StatusCode == HttpStatusCode.OK && await response.Content.ReadAsStringAsync(timeout.Token) == TestServer.Body)
                {
                    answered++;
                }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                // Not accepted in time; the next request opens a new connection.
            }
        }

        return answered;
    }

    /// <summary>
    /// The (unlinked) accept lock files <paramref name="pid"/> has open, as their link targets name them; null once it
    /// has exited (a worker that finished draining).
    /// </summary>
    private static SortedSet<string>? LockFiles(int pid)
    {
        var locks = new SortedSet<string>(StringComparer.Ordinal);
        string[] fds;
        try
        {
            fds = Directory.GetFiles($"/proc/{pid}/fd");
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }

        foreach (var fd in fds)
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.Contains("/kestrel-accept-", StringComparison.Ordinal))
                {
                    locks.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed while listed.
            }
        }

        return locks;
    }
}
