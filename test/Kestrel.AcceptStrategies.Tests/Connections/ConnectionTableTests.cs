using System.Net;
using Kestrel.AcceptStrategies.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Connections;

public sealed class ConnectionTableTests
{
    [Fact]
    public void Tokens_StayAboveTheLoopsOwn_WhenAGenerationWraps()
    {
        using var settings = new NativeConnectionSettings(null, new SocketTransportOptions(), NullLogger.Instance);
        var table = new ConnectionTable(uint.MaxValue - 1);
        var first = Connection(settings);
        var token = table.Add(first);
        Assert.Equal(uint.MaxValue, (uint)(token >> 32));
        table.Release(token);

        // Slot 0 again, one generation later: 0 would make the token 0, the listening socket's.
        var second = Connection(settings);
        var wrapped = table.Add(second);
        Assert.Equal(0u, (uint)wrapped);
        Assert.True(wrapped > 3, $"token {wrapped} collides with the loop's own tokens (0-3)");
        Assert.Same(second, table.Find(wrapped));
        Assert.Null(table.Find(token));
    }

    // Never started: only a slot's occupant. The descriptor number is never used (-1 is invalid, nothing is closed).
    private static NativeConnection Connection(NativeConnectionSettings settings) =>
        new(-1, new IPEndPoint(IPAddress.Loopback, 1), null, settings);
}
