using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Systemd;

/// <summary>
/// The supervisor's side of sd_notify(3): when systemd (or anything speaking its protocol) gave the process a
/// <c>NOTIFY_SOCKET</c>, the supervisor says when the group serves (<c>READY=1</c>), when a reload begins
/// (<c>RELOADING=1</c> with <c>MONOTONIC_USEC</c>, as <c>Type=notify-reload</c> requires) and ends (<c>READY=1</c>
/// again), and when it stops (<c>STOPPING=1</c>), each with a <c>STATUS=</c> line.
/// </summary>
/// <remarks>
/// <para>
/// No dependency on <c>UseSystemd()</c>, and no conflict with it: its lifetime sends <c>READY=1</c> once the host has
/// started, which in a supervisor is after the workers accept, and <c>STOPPING=1</c> again at stop; systemd takes a
/// repeated state as the same state. Workers never see the variable (<see cref="NotInheritedVariables"/>): a worker
/// that notified would be refused under <c>NotifyAccess=main</c>, or worse, taken as the service under <c>all</c>.
/// </para>
/// <para>
/// Datagrams to a socket path or, with a leading <c>@</c>, to an abstract name. A failed send never fails the
/// supervisor: it is logged once, and later sends are still tried.
/// </para>
/// </remarks>
internal sealed class ServiceNotifier : IDisposable
{
    /// <summary>The variable that names the service manager's socket.</summary>
    public const string SocketVariable = "NOTIFY_SOCKET";

    /// <summary>The service manager's variables a worker must not inherit: they describe the supervisor's service.</summary>
    public static readonly IReadOnlyList<string> NotInheritedVariables = [SocketVariable, "WATCHDOG_USEC", "WATCHDOG_PID"];

    private readonly Socket _socket;
    private readonly UnixDomainSocketEndPoint _target;
    private readonly string _path;
    private readonly ILogger _logger;
    private int _failed;

    private ServiceNotifier(string path, ILogger logger)
    {
        _path = path;
        _logger = logger;
        _target = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>The notifier for <c>NOTIFY_SOCKET</c>, or null when the process was not given one (or was given something no socket can be).</summary>
    public static ServiceNotifier? FromEnvironment(ILogger logger)
    {
        var path = Environment.GetEnvironmentVariable(SocketVariable);
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }

        if (path[0] is not ('/' or '@') || path.Length < 2)
        {
            AcceptStrategyLog.ServiceManagerUnreachable(logger, path, "not an absolute path or an abstract name (@name)");
            return null;
        }

        return new ServiceNotifier(path, logger);
    }

    /// <summary>The group serves: at start, and when a reload has ended.</summary>
    public void Ready(string status) => Send($"READY=1\nSTATUS={Line(status)}");

    /// <summary>A reload begins, at the time systemd compares with the signal it sent.</summary>
    public void Reloading(string status) => Send(string.Create(CultureInfo.InvariantCulture, $"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds()}\nSTATUS={Line(status)}"));

    /// <summary>The graceful stop begins.</summary>
    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={Line(status)}");

    /// <summary>A new status line, the state unchanged.</summary>
    public void Status(string status) => Send($"STATUS={Line(status)}");

    /// <summary>A successor supervisor (SIGUSR2) serves: it is the service's main process from now on.</summary>
    public void MainPid(int pid, string status) => Send(string.Create(CultureInfo.InvariantCulture, $"MAINPID={pid}\nREADY=1\nSTATUS={Line(status)}"));

    public void Dispose() => _socket.Dispose();

    /// <summary>CLOCK_MONOTONIC in microseconds, the clock <c>MONOTONIC_USEC</c> is read against.</summary>
    public static unsafe long MonotonicMicroseconds()
    {
        Libc.TimeSpec now;
        if (Libc.ClockGetTime(Libc.CLOCK_MONOTONIC, &now) != 0)
        {
            throw new IOException("clock_gettime(CLOCK_MONOTONIC) failed: " + Libc.ErrnoName(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()));
        }

        return (now.Seconds * 1_000_000) + (now.Nanoseconds / 1000);
    }

    private void Send(string message)
    {
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(message), SocketFlags.None, _target);
            Interlocked.Exchange(ref _failed, 0);
            AcceptStrategyLog.ServiceManagerNotified(_logger, message.Replace('\n', ' '));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            if (Interlocked.Exchange(ref _failed, 1) == 0)
            {
                AcceptStrategyLog.ServiceManagerUnreachable(_logger, _path, e.Message);
            }
        }
    }

    // One assignment per line: a newline in a status would start another.
    private static string Line(string status) => status.ReplaceLineEndings(" ");
}
