using System.Globalization;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// ReusePort worker groups whose slots do not all have an accepting worker: the kernel would hash a share of new
/// connections to the sockets of a slot whose worker cannot start, where nobody accepts them; the supervisor steers
/// them to the slots whose workers accept.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class ReusePortSteeringGroupTests
{
    private static readonly TimeSpan Answered = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task SlotWhoseWorkerCrashesAtStart_40ClientsConnect_EveryOneAnsweredWithin2sByTheLiveSlot()
    {
        await using var group = await WorkerGroup.StartAsync(
            2, AcceptStrategy.ReusePort, "--CrashWorkerInSlot=1 --WorkerProcesses:RespawnBackoff=00:00:00.2 --Logging:LogLevel:Kestrel.AcceptStrategies.Supervisor=Debug", acceptors: 1, ready: 1);
        await group.WaitUntilAsync(g => g.Exited.Any(e => e.Slot == 1), TestServer.Timeout, "slot 1's worker failing to start");
        await group.WaitUntilAsync(g => g.EventsOf(LogEvents.Steered) is [.., var last] && last["Slots"] == "0", TestServer.Timeout, "connections steered to slot 0");
        var live = Assert.Single(group.Ready);
        Assert.Equal(0, live.Slot);

        // 40 clients at once, each on a new connection, as a crash loop in slot 1 goes on.
        using var client = Load.CreateClient();
        client.Timeout = Answered;
        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(group.Address, $"/whoami?i={i}"));
            request.Headers.ConnectionClose = true;
            try
            {
                using var response = await client.SendAsync(request);
                return await response.Content.ReadAsStringAsync();
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return $"request {i}: {e.Message}";
            }
        }));

        Assert.All(answers, a => Assert.StartsWith(string.Create(CultureInfo.InvariantCulture, $"Worker {live.Pid} 0 "), a, StringComparison.Ordinal));
        Assert.DoesNotContain(group.Ready, r => r.Slot == 1);
        Assert.Empty(group.EventsOf(LogEvents.SteeringUnavailable));
    }
}
