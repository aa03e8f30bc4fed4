using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Endpoints;

/// <summary>The supervisor's sockets of one endpoint, once Kestrel has unbound it.</summary>
public sealed class SupervisedEndpointTests
{
    [Theory]
    [InlineData(AcceptStrategy.ThunderingHerd)]
    [InlineData(AcceptStrategy.ReusePort)]
    public void FdsFor_AfterDispose_ClearErrorNotAStaleDescriptor(AcceptStrategy strategy)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();
        var endpoint = new SupervisedEndpoint("127.0.0.1:0", [socket], strategy, 1, deferAccept: false, new SocketTransportOptions(), NullLogger.Instance);
        Assert.Single(endpoint.FdsFor(0).Sockets);

        endpoint.Dispose();

        // A closed socket's number may already be someone else's descriptor: a worker must never inherit it.
        var error = Assert.Throws<ObjectDisposedException>(() => endpoint.FdsFor(0));
        Assert.Contains("127.0.0.1:0", error.Message, StringComparison.Ordinal);
    }
}
