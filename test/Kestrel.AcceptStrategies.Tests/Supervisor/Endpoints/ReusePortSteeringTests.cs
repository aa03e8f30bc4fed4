using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Endpoints;

/// <summary>
/// The program that steers an SO_REUSEPORT group's new connections, on this kernel: connections land only on the
/// sockets it names, counted in each socket's accept queue.
/// </summary>
public sealed class ReusePortSteeringTests
{
    private const int Connections = 40;

    [Fact]
    public async Task Attach_TwoOfFourSockets_EveryConnectionQueuedOnThoseTwoSpreadOverBoth()
    {
        var group = ListenSocketBinder.Bind(new IPEndPoint(IPAddress.Loopback, 0), AcceptStrategy.ReusePort, 4, deferAccept: false, new SocketTransportOptions());
        try
        {
            Assert.Equal(0, ReusePortSteering.Attach(group[2], [1, 3]));
            var counts = await ConnectAndCountAsync(group, Connections);
            Assert.Equal([0, counts[1], 0, counts[3]], counts);
            Assert.Equal(Connections, counts.Sum());
            Assert.True(counts[1] > 0 && counts[3] > 0, $"not spread over both: {string.Join(", ", counts)}");

            // Another program replaces it at once.
            Assert.Equal(0, ReusePortSteering.Attach(group[0], [2]));
            var after = await ConnectAndCountAsync(group, 10);
            Assert.Equal([0, 0, 10, 0], after);
        }
        finally
        {
            Array.ForEach(group, s => s.Dispose());
        }
    }

    [Fact]
    public async Task SupervisedEndpoint_SlotsBoundLaterAndReleased_KeepTheirIndices()
    {
        // Two slots of two sockets at start (indices 0-3), a third slot bound when its first worker starts (4, 5).
        var socketOptions = new SocketTransportOptions();
        var sockets = ListenSocketBinder.Bind(new IPEndPoint(IPAddress.Loopback, 0), AcceptStrategy.ReusePort, 4, deferAccept: false, socketOptions);
        using var endpoint = new SupervisedEndpoint("127.0.0.1:0", sockets, AcceptStrategy.ReusePort, 2, deferAccept: false, socketOptions, NullLogger.Instance);
        var slots = Enumerable.Range(0, 3).Select(s => endpoint.FdsFor(s).Sockets.Select(Borrow).ToArray()).ToArray();
        try
        {
            endpoint.Steer([2]);
            var first = await ConnectAndCountAsync([.. slots.SelectMany(s => s)], 16);
            Assert.Equal([0, 0, 0, 0, first[4], first[5]], first);
            Assert.Equal(16, first[4] + first[5]);

            // Slot 1 removed: its sockets stay open (the next slot 1 takes them again), out of the program.
            endpoint.ReleaseSlot(1);
            endpoint.Steer([0, 2]);
            Assert.Equal(slots[1].Select(s => s.Handle), endpoint.FdsFor(1).Sockets.Select(fd => (IntPtr)fd));
            var counts = await ConnectAndCountAsync([.. slots.SelectMany(s => s)], Connections);
            Assert.Equal(0, counts[2] + counts[3]);
            Assert.Equal(Connections, counts.Sum());
        }
        finally
        {
            foreach (var socket in slots.SelectMany(s => s))
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>A <see cref="Socket"/> over a descriptor the endpoint owns, not closing it.</summary>
    private static Socket Borrow(int fd) => new(new SafeSocketHandle(fd, ownsHandle: false));

    /// <summary>Opens <paramref name="count"/> connections to the group's port, then takes each socket's queue: how many each had.</summary>
    private static async Task<int[]> ConnectAndCountAsync(Socket[] group, int count)
    {
        var endPoint = (IPEndPoint)group[0].LocalEndPoint!;
        var clients = new List<Socket>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(endPoint).WaitAsync(TestServer.Timeout);
            }

            var counts = new int[group.Length];
            for (var i = 0; i < group.Length; i++)
            {
                group[i].Blocking = false;
                while (true)
                {
                    try
                    {
                        group[i].Accept().Dispose();
                        counts[i]++;
                    }
                    catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
                    {
                        break;
                    }
                }
            }

            return counts;
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }
}
