using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Creates the listening sockets of one IP endpoint: one shared socket, or one <c>SO_REUSEPORT</c> socket per acceptor.
/// </summary>
internal static class ListenSocketBinder
{
    public static Socket[] Bind(IPEndPoint endpoint, AcceptStrategy strategy, int acceptors, bool deferAccept, SocketTransportOptions socketOptions)
    {
        Socket[] sockets;
        try
        {
            sockets = strategy == AcceptStrategy.ReusePort
                ? BindReusePortGroup(endpoint, acceptors, socketOptions)
                : [BindShared(endpoint, socketOptions)];
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // Kestrel turns this into its usual "address already in use" error.
            throw new AddressInUseException(e.Message, e);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TooManyOpenSockets)
        {
            throw DescriptorLimit.OutOfDescriptors($"Binding {endpoint} for {acceptors} acceptor(s) with {strategy}", e);
        }

        try
        {
            foreach (var socket in sockets)
            {
                Prepare(socket, deferAccept);
            }
        }
        catch
        {
            Array.ForEach(sockets, s => s.Dispose());
            throw;
        }

        return sockets;
    }

    /// <summary>
    /// A Unix socket (worker mode): one socket every acceptor of every worker shares, whatever the strategy, since Linux
    /// has no <c>SO_REUSEPORT</c> for <c>AF_UNIX</c>. Bound by Kestrel's socket factory, so the file is made and refused
    /// exactly as under <c>UseSockets()</c>: a file already there is "address already in use", and it stays after exit.
    /// </summary>
    public static Socket BindUnix(UnixDomainSocketEndPoint endpoint, SocketTransportOptions socketOptions)
    {
        Socket socket;
        try
        {
            socket = BindShared(endpoint, socketOptions);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException(e.Message, e);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TooManyOpenSockets)
        {
            throw DescriptorLimit.OutOfDescriptors($"Binding the Unix socket {endpoint}", e);
        }

        try
        {
            Prepare(socket, deferAccept: false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    private static Socket BindShared(EndPoint endpoint, SocketTransportOptions socketOptions)
    {
        // Kestrel's own factory (or the user's replacement): dual mode for [::], AddressInUseException on a taken port.
        var socket = socketOptions.CreateBoundListenSocket(endpoint);
        try
        {
            socket.Listen(socketOptions.Backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket[] BindReusePortGroup(IPEndPoint endpoint, int count, SocketTransportOptions socketOptions)
    {
        if (!IsDefaultSocketFactory(socketOptions.CreateBoundListenSocket))
        {
            throw new NotSupportedException(
                $"SocketTransportOptions.CreateBoundListenSocket is customised, but the {nameof(AcceptStrategy.ReusePort)} strategy must create its own SO_REUSEPORT sockets. Use {nameof(AcceptStrategy.Serialized)} or {nameof(AcceptStrategy.ThunderingHerd)}, which use your factory, or remove the customisation.");
        }

        // SO_REUSEPORT would let us join a group another process already listens in. Binding a plain socket first
        // fails with EADDRINUSE if anyone holds the port (with or without SO_REUSEPORT), and resolves port 0.
        int port;
        using (var probe = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint))
        {
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        var bound = new IPEndPoint(endpoint.Address, port);
        var sockets = new Socket[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var socket = sockets[i] = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                if (endpoint.Address.Equals(IPAddress.IPv6Any))
                {
                    socket.DualMode = true;
                }

                socket.SetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_REUSEPORT, BitConverter.GetBytes(1));
                socket.Bind(bound);
                socket.Listen(socketOptions.Backlog);
            }

            return sockets;
        }
        catch
        {
            DisposeAll(sockets);
            throw;
        }
    }

    /// <summary>One more socket for an existing <c>SO_REUSEPORT</c> group on <paramref name="bound"/> (a new worker slot).</summary>
    public static Socket BindReusePortMember(IPEndPoint bound, bool deferAccept, SocketTransportOptions socketOptions)
    {
        Socket socket;
        try
        {
            socket = new Socket(bound.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TooManyOpenSockets)
        {
            throw DescriptorLimit.OutOfDescriptors($"Binding another SO_REUSEPORT socket on {bound} for a new worker slot", e);
        }

        try
        {
            if (bound.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.SetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_REUSEPORT, BitConverter.GetBytes(1));
            socket.Bind(bound);
            socket.Listen(socketOptions.Backlog);
            Prepare(socket, deferAccept);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A second descriptor for a shared listening socket: each acceptor needs its own <see cref="Socket"/>, or .NET
    /// queues their accepts behind each other.
    /// </summary>
    public static Socket Duplicate(Socket shared)
    {
        var fd = Libc.Fcntl((int)shared.SafeHandle.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new SocketException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }

        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

    /// <summary>Wraps listening descriptors made elsewhere; if one cannot be, every one of them is closed, not leaked.</summary>
    public static Socket[] Adopt(int[] fds)
    {
        var sockets = new List<Socket>(fds.Length);
        try
        {
            foreach (var fd in fds)
            {
                sockets.Add(new Socket(new SafeSocketHandle(fd, ownsHandle: true)));
            }

            return [.. sockets];
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            foreach (var fd in fds.Skip(sockets.Count))
            {
                _ = Libc.Close(fd);
            }

            throw;
        }
    }

    /// <summary>Non-blocking (several acceptors wait on it), and <c>TCP_DEFER_ACCEPT</c> if asked for.</summary>
    public static unsafe void Prepare(Socket socket, bool deferAccept)
    {
        var fd = (int)socket.SafeHandle.DangerousGetHandle();

        // Several acceptors (and later processes) wait on one socket in epoll; the losers must get EAGAIN, not block
        // in accept.
        var flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
        if (flags < 0 || Libc.Fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK) < 0)
        {
            throw new SocketException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }

        if (deferAccept)
        {
            // Seconds the kernel holds a data-less connection before handing it over anyway.
            socket.SetRawSocketOption(Libc.IPPROTO_TCP, Libc.TCP_DEFER_ACCEPT, BitConverter.GetBytes(1));
        }
    }

    private static bool IsDefaultSocketFactory(Func<EndPoint, Socket> factory) =>
        factory.Target is null && factory.Method == ((Func<EndPoint, Socket>)SocketTransportOptions.CreateDefaultBoundListenSocket).Method;

    private static void DisposeAll(Socket?[] sockets)
    {
        foreach (var socket in sockets)
        {
            socket?.Dispose();
        }
    }
}
