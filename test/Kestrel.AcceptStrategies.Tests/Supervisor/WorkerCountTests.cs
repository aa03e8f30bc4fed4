using System.Globalization;
using System.Net.Http;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>What the supervisor says a worker served must be what it served, up to its last request.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerCountTests
{
    [Theory]
    [InlineData("HUP", "reload")]
    [InlineData("TERM", "stopped")]
    public async Task Exit_AfterKnownRequests_SupervisorLogsExactCount(string signal, string reason)
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort);
        var worker = group.Ready.Single().Pid;

        // Some before the signal, and the rest on kept-alive connections while the worker drains, the last ones
        // moments before it exits: every one of them must be in the supervisor's final count.
        const int before = 23;
        using (var client = Load.CreateClient())
        {
            for (var i = 0; i < before; i++)
            {
                Assert.Equal(TestServer.Body, await client.GetStringAsync(new Uri(group.Address, "/foo")));
            }
        }

        var held = new List<HttpClient>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                var own = Load.CreateClient();
                held.Add(own);
                Assert.Equal(TestServer.Body, await own.GetStringAsync(new Uri(group.Address, "/foo")));
            }

            group.Signal(signal);
            await group.WaitUntilAsync(g => g.EventsOf(LogEvents.WorkerDraining).Any(e => e.Int("Pid") == worker), TestServer.Timeout, "the drain");

            // Each held connection sends one more request to the draining worker (answered with Connection: close),
            // all at once, well inside the drain's grace.
            var answers = await Task.WhenAll(held.Select(own => own.GetStringAsync(new Uri(group.Address, "/foo"))));
            Assert.All(answers, a => Assert.Equal(TestServer.Body, a));

            await group.WaitUntilAsync(g => g.Exited.Any(e => e.Pid == worker), TestServer.Timeout, "the worker's exit");
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }

        var exit = Assert.Single(group.Exited, e => e.Pid == worker);
        Assert.Equal(reason, exit.Reason);
        var served = exit.Requests;
        Assert.True(before + 10 == served, $"served {before + 10}, the supervisor says {served}:\n{group.Supervisor.Output}");
    }
}
