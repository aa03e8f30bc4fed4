using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// An idle group sleeps: the supervisor's timer only fires for a deadline or its pause check (a quarter of the hang
/// timeout), and an idle worker heart-beats only as often as hang detection needs (a quarter of the hang timeout).
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class IdleGroupTests
{
    // A quarter of it is 3 s: the intervals asserted below are lower bounds, which a loaded machine only lengthens.
    private const string Arguments = "--WorkerProcesses:HangTimeout=00:00:12 --Logging:LogLevel:Kestrel.AcceptStrategies.Supervisor=Debug";
    private const string Category = "Kestrel.AcceptStrategies.Supervisor";
    private static readonly TimeSpan Quarter = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task IdleGroup_TimerAndHeartbeatsSleepAQuarterOfTheHangTimeout()
    {
        await using var group = await WorkerGroup.StartAsync(2, AcceptStrategy.ReusePort, Arguments);
        var readyAt = group.Events.Count;

        // The first heartbeats after ready may still carry the warm-up's reset counts (sent at once); skip two.
        await group.WaitUntilAsync(
            g => Ticks(g, readyAt).Count >= 4 && group.Ready.All(r => Heartbeats(g, readyAt, r.Pid).Count >= 4),
            TestServer.Timeout + TimeSpan.FromSeconds(30),
            "four timer ticks and four heartbeats per worker while idle");

        // Planned times, so a late loop cannot shorten them: before, the loop ticked every 500 ms.
        Assert.All(Ticks(group, readyAt).Skip(1), ms => Assert.True(ms >= Quarter.TotalMilliseconds * 0.9, $"timer fired {ms} ms after the previous one"));

        // Read times: a supervisor late by up to 1 s on one of them still passes; before, idle workers sent every 1 s.
        foreach (var ready in group.Ready)
        {
            Assert.All(
                Heartbeats(group, readyAt, ready.Pid).Skip(2),
                ms => Assert.True(ms >= Quarter.TotalMilliseconds * 2 / 3, $"worker {ready.Pid} heart-beat {ms} ms after its previous message"));
        }
    }

    private static List<long> Ticks(WorkerGroup group, int from) =>
        [.. group.Events.Skip(from).Where(e => e.EventId == LogEvents.SupervisorTimerFired && e.Category == Category).Select(e => e.Long("IntervalMilliseconds"))];

    private static List<long> Heartbeats(WorkerGroup group, int from, int pid) =>
        [.. group.Events.Skip(from).Where(e => e.EventId == LogEvents.HeartbeatReceived && e.Category == Category && e.Int("Pid") == pid).Select(e => e.Long("IntervalMilliseconds"))];
}
