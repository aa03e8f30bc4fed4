using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// Ending a connection must not wake its event loop: each wake of an idle loop is a context switch per request,
/// which is what many worker processes on few cores pay for.
/// </summary>
public sealed class ConnectionDescriptorTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Close_RaisesNoEventInTheLoopsSet_AndTheClientSeesTheEnd(bool abortive)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).WaitAsync(TimeSpan.FromSeconds(10));

        // Taken as the event loop takes it: a bare descriptor that no Socket object owns (one that did could act on the
        // number after it is closed here and reused by another test's socket).
        var fd = AcceptPending(listener);
        Assert.True(fd >= 0, $"accept4 failed: {Libc.ErrnoName(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");

        using var epoll = new Epoll();
        using var events = new EpollEventBuffer(4);
        Assert.Equal(0, epoll.Add(fd, NativeConnection.ReadEvents, 42));
        Assert.Equal(0, epoll.Wait(events, 0));

        // A reference held as the loop holds one while it reads: the descriptor stays open past Close, so what the
        // shutdown raised would still be reported.
        var descriptor = new ConnectionDescriptor(fd);
        var added = false;
        descriptor.DangerousAddRef(ref added);
        descriptor.Close(abortive, epoll);
        var n = epoll.Wait(events, 0);
        descriptor.DangerousRelease();

        Assert.True(n == 0, n > 0 ? $"closing raised events 0x{events[0].Events:x} on the loop's set" : $"epoll_wait failed: {n}");
        Assert.True(descriptor.IsClosed);

        // The peer sees the end as the close meant it: FIN (a zero read) or RST.
        var buffer = new byte[1];
        if (abortive)
        {
            var error = await Assert.ThrowsAsync<SocketException>(
                async () => await client.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        }
        else
        {
            Assert.Equal(0, await client.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    // The connection is already queued (the connect completed), so the blocking listener returns at once.
    private static unsafe int AcceptPending(Socket listener) =>
        Libc.Accept4((int)listener.SafeHandle.DangerousGetHandle(), null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
}
