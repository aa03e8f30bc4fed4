using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// systemd socket activation (sd_listen_fds(3)): the listening TCP sockets passed to the process the user started as
/// descriptors 3.. with <c>LISTEN_FDS</c>/<c>LISTEN_PID</c>. Kestrel is told to listen on their addresses, and the
/// binders take the passed socket instead of binding one. A worker gets the addresses (not the variables, which name
/// its supervisor's pid) through <see cref="EndpointsVariable"/> and the sockets through the usual inherited
/// descriptors.
/// </summary>
/// <remarks>
/// Read once, when the host builds Kestrel's options at start: the descriptors are marked close-on-exec and the
/// LISTEN_* variables removed, so neither a worker nor anything else the process starts inherits them (aspnetcore
/// #29189). <c>UseAcceptStrategy()</c> only looks at whether the variables are there (<see cref="Present"/>).
/// </remarks>
internal sealed class SocketActivation
{
    public const string EndpointsVariable = "KESTREL_ACCEPT_STRATEGIES_ACTIVATED";
    private const int FirstFd = 3;
    private const int SO_ACCEPTCONN = 30;
    private static readonly string[] Variables = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

    private readonly List<(IPEndPoint EndPoint, Socket? Socket, int Fd, string Name)> _sockets;

    private SocketActivation(List<(IPEndPoint, Socket?, int, string)> sockets, string? ignoredPid)
    {
        _sockets = sockets;
        IgnoredPid = ignoredPid;
    }

    private static readonly object ReadGate = new();
    private static bool s_read;
    private static SocketActivation? s_current;

    /// <summary>
    /// This process's activated sockets (a worker: its supervisor's addresses), null when there are none. The
    /// variables are gone after the first read, so every later call (another host in the process) gets that result.
    /// </summary>
    /// <summary>Whether the environment passes sockets to this process (reading changes nothing).</summary>
    public static bool Present(bool worker) => worker
        ? !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(EndpointsVariable))
        : Environment.GetEnvironmentVariable("LISTEN_PID") is not null && Environment.GetEnvironmentVariable("LISTEN_FDS") is not null;

    public static SocketActivation? ReadOnce(bool worker)
    {
        lock (ReadGate)
        {
            if (!s_read)
            {
                s_current = worker ? ReadForWorker() : ReadForThisProcess();
                s_read = true;
            }

            return s_current;
        }
    }

    /// <summary>Set when LISTEN_PID named another process: the variables were meant for it and are left alone.</summary>
    public string? IgnoredPid { get; }

    public IReadOnlyList<IPEndPoint> EndPoints => [.. _sockets.Select(s => s.EndPoint)];

    /// <summary>The activated sockets of the process the user started; null when there are none for it.</summary>
    private static SocketActivation? ReadForThisProcess()
    {
        var pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        var count = Environment.GetEnvironmentVariable("LISTEN_FDS");
        if (pid is null || count is null)
        {
            return null;
        }

        if (pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return new SocketActivation([], pid);
        }

        if (!int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
        {
            throw new InvalidOperationException($"systemd socket activation: LISTEN_FDS = '{count}' is not a positive number of descriptors.");
        }

        var names = Environment.GetEnvironmentVariable("LISTEN_FDNAMES")?.Split(':') ?? [];
        var sockets = new List<(IPEndPoint, Socket?, int, string)>(n);
        try
        {
            for (var fd = FirstFd; fd < FirstFd + n; fd++)
            {
                var name = fd - FirstFd < names.Length ? names[fd - FirstFd] : "unknown";
                Libc.SetCloseOnExec(fd, true);
                var socket = Validate(fd, name);
                sockets.Add(((IPEndPoint)socket.LocalEndPoint!, socket, fd, name));
            }
        }
        catch
        {
            sockets.ForEach(s => s.Item2!.Dispose());
            throw;
        }

        foreach (var variable in Variables)
        {
            Libc.RemoveEnvironmentVariable(variable);
        }

        // Read by the workers, which Kestrel must ask for the same endpoints.
        Environment.SetEnvironmentVariable(EndpointsVariable, string.Join(';', sockets.Select(s => s.Item1.ToString())));
        return new SocketActivation(sockets, null);
    }

    /// <summary>A worker's view: the activated addresses its supervisor serves (the sockets come as inherited fds).</summary>
    private static SocketActivation? ReadForWorker()
    {
        var value = Environment.GetEnvironmentVariable(EndpointsVariable);
        Libc.RemoveEnvironmentVariable(EndpointsVariable);
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        return new SocketActivation([.. value.Split(';').Select(e => (IPEndPoint.Parse(e), (Socket?)null, -1, ""))], null);
    }

    /// <summary>
    /// Takes the activated socket for <paramref name="endpoint"/> (once), with its descriptor and name for logs.
    /// </summary>
    public bool TryTake(IPEndPoint endpoint, out Socket socket, out int fd, out string name)
    {
        lock (_sockets)
        {
            var i = _sockets.FindIndex(s => s.Socket is not null && s.EndPoint.Equals(endpoint));
            if (i < 0)
            {
                (socket, fd, name) = (null!, -1, "");
                return false;
            }

            (socket, fd, name) = (_sockets[i].Socket!, _sockets[i].Fd, _sockets[i].Name);
            _sockets[i] = (_sockets[i].EndPoint, null, fd, name);
            return true;
        }
    }

    private static Socket Validate(int fd, string name)
    {
        Socket? socket = null;
        try
        {
            socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            var value = new byte[4];
            var listening = socket.GetRawSocketOption(Libc.SOL_SOCKET, SO_ACCEPTCONN, value) == 4 && BitConverter.ToInt32(value) != 0;
            if (socket.SocketType != SocketType.Stream
                || socket.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                || !listening)
            {
                throw NotTcp(fd, name, $"a {socket.AddressFamily} {socket.SocketType} socket, {(listening ? "listening" : "not listening")}", null);
            }

            return socket;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.NotSocket)
        {
            socket?.Dispose();
            throw NotTcp(fd, name, "not a socket", e);
        }
        catch
        {
            socket?.Dispose();
            throw;
        }
    }

    private static InvalidOperationException NotTcp(int fd, string name, string what, Exception? inner) => new(
        $"systemd socket activation: descriptor {fd} (LISTEN_FDNAMES '{name}') is {what}; Kestrel.AcceptStrategies serves listening TCP sockets only (ListenStream= with an IP address and port, Accept=no).",
        inner);
}
