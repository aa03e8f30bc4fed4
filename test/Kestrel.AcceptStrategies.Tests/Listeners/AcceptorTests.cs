using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

public sealed class AcceptorTests
{
    private const int FileLimit = 320;

    [Fact]
    public async Task Run_ThunderingHerdWithIdleAcceptors_KernelWakesOnePerConnection()
    {
        // Eight acceptors idle on one socket, connections one at a time: with EPOLLEXCLUSIVE the kernel wakes one
        // acceptor per connection, as for Starlet's blocking accept(2). Waiting in poll(2) woke all eight, and the
        // seven losers counted a spurious wake-up each (about 1,400 here).
        await using var server = await TestServer.StartAsync(o =>
        {
            o.Strategy = AcceptStrategy.ThunderingHerd;
            o.Acceptors = 8;
        });
        using var metrics = server.CollectMetrics();

        Assert.Empty(await Load.RunAsync(server.BaseAddress, total: 200, concurrency: 1, connectionClose: true));

        Assert.Equal(200, metrics.TotalAccepted);
        var spurious = metrics.Snapshot(Kestrel.AcceptStrategies.Internal.AcceptStrategyMetrics.SpuriousWakeupsName).Values.Sum();
        Assert.True(spurious < 100, $"{spurious} spurious wake-ups for 200 connections");
    }

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task Run_FileDescriptorsExhausted_LogsBacksOffAndServesAgain(AcceptStrategy strategy)
    {
        // Up to three servers, a new one only when the runtime itself aborted for want of a descriptor (see below); any
        // failure of the acceptor fails at once.
        for (var attempt = 1; ; attempt++)
        {
            await using var server = StartServer(strategy);
            try
            {
                await ExhaustAndRecoverAsync(server);
                return;
            }
            catch (Exception e)
            {
                if (attempt >= 3 || !await server.RuntimeAbortedAsync())
                {
                    throw new InvalidOperationException($"{e.GetType().Name}: {e.Message}\nThe server said:\n{server.Output}", e);
                }
            }
        }
    }

    private static ChildProcess StartServer(AcceptStrategy strategy) =>
        ChildProcess.StartBenchmarkApp(
            $"--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy={strategy} --AcceptStrategy:Acceptors=2",
            shellPrefix: $"ulimit -n {FileLimit} && ",
            // The runtime itself needs descriptors now and then: W^X double mapping for each new JIT'd code mapping, and
            // the GC's reads of /proc and cgroup files. Without one it aborts with "Out of memory", whatever the
            // transport. This test is about the acceptor, so keep those out of the few seconds of the storm.
            environment: new Dictionary<string, string>
            {
                ["DOTNET_EnableWriteXorExecute"] = "0",
                ["DOTNET_gcServer"] = "0",
                ["DOTNET_GCgen0size"] = "0x10000000",
                ["Logging__Console__FormatterName"] = "json",
            });

    private static async Task ExhaustAndRecoverAsync(ChildProcess server)
    {
        var address = await server.WaitForListeningAsync();
        var endPoint = new IPEndPoint(IPAddress.Loopback, address.Port);

        // Serve first, as a real server has: .NET loads assemblies lazily, and a type whose first use fails for
        // want of a descriptor stays broken for the life of the process, whatever the transport.
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(address, "/foo?foo=warm")));

        // More connections than the server has descriptors left, each with half a request so that it is accepted
        // (TCP_DEFER_ACCEPT holds back connections without data) and then held open by Kestrel.
        var open = Directory.GetFiles($"/proc/{server.Id}/fd").Length;
        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < FileLimit - open + 40; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(endPoint).WaitAsync(TestServer.Timeout);
                await client.SendAsync("GET /foo HTTP/1.1\r\nHost: x\r\n"u8.ToArray());
            }

            var storm = await server.WaitForEventAsync(LogEvents.AcceptError, null, TestServer.Timeout);
            Assert.Equal("TooManyOpenSockets", storm["Error"]);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }

        // The acceptor that hit EMFILE recovers by itself and the server answers again.
        await server.WaitForEventAsync(LogEvents.AcceptRecovered, null, TestServer.Timeout);
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(address, "/foo?foo=bar")));

        // Logged once per episode, not once per failed attempt: an acceptor warns again only after it has recovered.
        var failing = new HashSet<string>();
        foreach (var e in server.Events.Where(e => e.EventId is LogEvents.AcceptError or LogEvents.AcceptRecovered))
        {
            var warned = e.EventId == LogEvents.AcceptError;
            Assert.True(warned ? failing.Add(e["Acceptor"]) : failing.Remove(e["Acceptor"]), $"Out of order: {e.Message}\n{server.Output}");
        }
    }
}
