using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

public sealed class AcceptorTests
{
    private const int FileLimit = 320;

    [Theory]
    [InlineData(AcceptStrategy.Serialized)]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public async Task Run_FileDescriptorsExhausted_LogsBacksOffAndServesAgain(AcceptStrategy strategy)
    {
        await using var server = ChildProcess.StartBenchmarkApp(
            $"--urls=http://127.0.0.1:0 --AcceptStrategy:Strategy={strategy} --AcceptStrategy:Acceptors=2",
            shellPrefix: $"ulimit -n {FileLimit} && ");
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

            var storm = await server.WaitForLineAsync(l => l.Contains("failed to accept", StringComparison.Ordinal), TestServer.Timeout);
            Assert.Contains("TooManyOpenSockets", storm, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }

        // The acceptor that hit EMFILE recovers by itself and the server answers again.
        await server.WaitForLineAsync(l => l.Contains("is accepting again", StringComparison.Ordinal), TestServer.Timeout);
        Assert.Equal(TestServer.Body, await Load.GetAsync(new Uri(address, "/foo?foo=bar")));

        // Logged once per episode, not once per failed attempt: at most one warning from each of the two acceptors.
        var warnings = server.Output.Split('\n').Where(l => l.Contains("failed to accept", StringComparison.Ordinal)).ToArray();
        Assert.InRange(warnings.Length, 1, 2);
        Assert.Equal(warnings.Length, warnings.Select(l => l[l.IndexOf("Acceptor ", StringComparison.Ordinal)..l.IndexOf(" on ", StringComparison.Ordinal)]).Distinct().Count());
    }
}
