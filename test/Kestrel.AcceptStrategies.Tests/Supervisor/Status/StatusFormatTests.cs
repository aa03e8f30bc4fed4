using System.Text;
using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Status;
using Microsoft.Extensions.Time.Testing;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Status;

/// <summary>The status snapshot as the loop takes it, and its JSON and text forms.</summary>
public sealed class StatusFormatTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 23, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Snapshot_LiveWorkersBySlot_WallClockStart_RestartsByReasonWithoutStops()
    {
        var time = new FakeTimeProvider(Start);
        var status = new SupervisorStatus(time);
        var slot0 = new WorkerSlot(0);
        var slot1 = new WorkerSlot(1);
        var old = Worker(time, 101, slot1, 1);
        status.Started(old);
        time.Advance(TimeSpan.FromSeconds(2));
        var active = Worker(time, 102, slot1, 2);
        status.Started(active);
        var first = Worker(time, 100, slot0, 1);
        status.Started(first);
        active.State = WorkerState.Active;
        active.Requests = 42;
        active.OpenConnections = 3;
        active.InFlight = 1;
        active.Accepted = [20, 22];
        status.Exited(old, WorkerExitReason.Crashed);
        status.Exited(Worker(time, 99, slot0, 0), WorkerExitReason.Stopped);

        // A pause of the supervisor shifts its monotonic timestamps; the wall clock of the start stays.
        active.StartedAt += time.Units(TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(10));
        var snapshot = status.Snapshot(AcceptStrategy.Serialized, [], [active, first]);

        Assert.Equal(Environment.ProcessId, snapshot.Pid);
        Assert.Equal("Serialized", snapshot.Strategy);
        Assert.Equal(Start, snapshot.StartedAt);
        Assert.Equal([100, 102], snapshot.Workers.Select(w => w.Pid));
        var w = snapshot.Workers[1];
        Assert.Equal((1, 2, "active", 42L, 3L, 1L, 500L), (w.Slot, w.Generation, w.State, w.Requests, w.Connections, w.InFlight, w.Budget));
        Assert.Equal([20L, 22L], w.Accepted);
        Assert.Equal(Start.AddSeconds(2), w.StartedAt);
        Assert.Equal("starting", snapshot.Workers[0].State);
        Assert.Equal(1, snapshot.Restarts.Single(r => r.Key == "crashed").Value);
        Assert.DoesNotContain(snapshot.Restarts, r => r.Key == "stopped");
        Assert.All(snapshot.Restarts.Where(r => r.Key != "crashed"), r => Assert.Equal(0, r.Value));

        // Immutable: the loop goes on changing its workers while the view serializes.
        active.Requests = 1000;
        Assert.Equal(42, snapshot.Workers[1].Requests);
    }

    [Fact]
    public async Task Reply_SnapshotFails_FailureGoesToTheAsker()
    {
        var status = new SupervisorStatus(new FakeTimeProvider(Start));
        var reply = new TaskCompletionSource<StatusSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);

        status.Reply(reply, AcceptStrategy.ReusePort, null!, [Worker(new FakeTimeProvider(Start), 1, new WorkerSlot(0), 1)]);

        await Assert.ThrowsAsync<ArgumentNullException>(() => reply.Task);
    }

    [Fact]
    public void Json_EveryField()
    {
        var json = JsonNode.Parse(Encoding.UTF8.GetString(StatusJson.Write(Sample())))!.AsObject();

        Assert.Equal(4321, (int)json["pid"]!);
        Assert.Equal("ReusePort", (string)json["strategy"]!);
        Assert.Equal("127.0.0.1:8080", (string)json["endpoints"]![0]!);
        Assert.Equal("2026-11-23T09:00:00.000Z", (string)json["startedAt"]!);
        Assert.Equal(2, (long)json["restarts"]!["crashed"]!);
        var worker = json["workers"]!.AsArray().Single()!;
        Assert.Equal(
            """{"pid":4400,"slot":0,"generation":3,"state":"draining","requests":1234,"connections":2,"inFlight":1,"rssBytes":73400320,"startedAt":"2026-11-23T09:00:01.250Z","budget":5000,"accepted":[600,634]}""",
            worker.ToJsonString());
    }

    [Fact]
    public void Json_RssUnknown_Null()
    {
        var sample = Sample();
        var json = JsonNode.Parse(StatusJson.Write(sample with { Workers = [sample.Workers[0] with { RssBytes = null }] }))!;

        Assert.Null(json["workers"]![0]!["rssBytes"]);
    }

    [Fact]
    public void Text_HeaderAndOneLinePerWorker()
    {
        var text = StatusText.Write(Sample());
        var lines = text.TrimEnd('\n').Split('\n');

        Assert.Equal("supervisor 4321, ReusePort on 127.0.0.1:8080, started 2026-11-23T09:00:00Z", lines[0]);
        Assert.Equal("1 worker(s); restarts: crashed 2", lines[1]);
        Assert.StartsWith("     pid slot  gen state", lines[2], StringComparison.Ordinal);
        Assert.Equal("    4400    0    3 draining      1234      2          1    70.0  2026-11-23T09:00:01Z    5000  600,634", lines[3]);
        Assert.Equal(4, lines.Length);
    }

    private static SupervisedWorker Worker(FakeTimeProvider time, int pid, WorkerSlot slot, int generation) =>
        new(pid, slot, generation, 500, time.GetTimestamp());

    private static StatusSnapshot Sample() => new(
        4321,
        "ReusePort",
        ["127.0.0.1:8080"],
        Start,
        [KeyValuePair.Create("recycled", 0L), KeyValuePair.Create("crashed", 2L)],
        [new WorkerStatus(4400, 0, 3, "draining", 1234, 2, 1, 70L * 1024 * 1024, Start.AddMilliseconds(1250), 5000, [600, 634])]);
}
