using System.Globalization;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Endpoints;

/// <summary>
/// The new supervisor's side of a hot upgrade (<c>SIGUSR2</c>): the listening sockets the previous supervisor handed
/// over, by the endpoint each was bound for, and the pipe on which this one says when its workers serve. Read once,
/// when the supervisor binds its first endpoint; the variables leave the environment then, so no worker inherits them.
/// </summary>
internal sealed class InheritedListeners : IDisposable
{
    /// <summary><c>ENDPOINT=FD[,FD...]</c> entries (<see cref="WorkerEnvironment.FormatFds"/>): every socket of each endpoint, in group order.</summary>
    public const string SocketsVariable = "KESTREL_ACCEPT_STRATEGIES_UPGRADE_FDS";

    /// <summary><c>ready=FD;from=PID</c>: the pipe to write one byte to once the workers serve, and the previous supervisor.</summary>
    public const string ReadyVariable = "KESTREL_ACCEPT_STRATEGIES_UPGRADE_READY";

    /// <summary>
    /// Whether a predecessor supervisor started this process (SIGUSR2), read before the host starts: the variable names
    /// this process's parent, so a process the successor itself starts, which inherits the variable, is not one.
    /// </summary>
    public static bool StartedByPredecessor =>
        Environment.GetEnvironmentVariable(ReadyVariable) is { } ready
        && ReadyFields(ready).TryGetValue("from", out var from)
        && int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
        && pid == Libc.GetParentPid();

    private readonly object _gate = new();
    private readonly ILogger _logger;
    private Dictionary<string, int[]>? _sockets;
    private int _readyFd = -1;
    private int _from;
    private int _taken;

    public InheritedListeners(ILoggerFactory loggerFactory) => _logger = loggerFactory.CreateLogger(AcceptStrategyLog.SupervisorCategory);

    /// <summary>Whether this supervisor was started by another's <c>SIGUSR2</c>.</summary>
    public bool IsUpgrade
    {
        get
        {
            lock (_gate)
            {
                Read();
                return _readyFd >= 0;
            }
        }
    }

    /// <summary>The supervisor whose <c>SIGUSR2</c> started this one; 0 when none did.</summary>
    public int Predecessor
    {
        get
        {
            lock (_gate)
            {
                Read();
                return _readyFd >= 0 ? _from : 0;
            }
        }
    }

    /// <summary>
    /// The sockets handed over for <paramref name="requested"/> (the endpoint as Kestrel asked for it), owned by the
    /// caller from here on, in group order; null when there are none.
    /// </summary>
    public Socket[]? Take(string requested)
    {
        lock (_gate)
        {
            Read();
            if (_sockets is null || !_sockets.Remove(requested, out var fds))
            {
                return null;
            }

            var sockets = new List<Socket>(fds.Length);
            try
            {
                foreach (var fd in fds)
                {
                    sockets.Add(new Socket(new SafeSocketHandle(fd, ownsHandle: true)));
                }
            }
            catch (SocketException e)
            {
                sockets.ForEach(s => s.Dispose());
                foreach (var fd in fds.Skip(sockets.Count + 1))
                {
                    _ = Libc.Close(fd);
                }

                throw new InvalidOperationException(
                    $"{SocketsVariable} names descriptors {string.Join(',', fds)} for {requested}, which are not all sockets ({e.Message}). It is set by a supervisor starting its successor on SIGUSR2; remove it unless one did.", e);
            }

            _taken += sockets.Count;
            return [.. sockets];
        }
    }

    /// <summary>
    /// The workers serve: tells the previous supervisor, which drains its own and exits, and closes the sockets of
    /// endpoints this configuration no longer has.
    /// </summary>
    public unsafe void Ready(int workers)
    {
        lock (_gate)
        {
            Read();
            if (_readyFd < 0)
            {
                return;
            }

            var left = CloseUntaken();
            byte ready = 1;
            var written = Libc.Write(_readyFd, &ready, 1);
            _ = Libc.Close(_readyFd);
            _readyFd = -1;
            AcceptStrategyLog.UpgradeTookOver(_logger, _from, _taken, left, workers, written == 1 ? "told it" : "could not tell it (it is gone)");
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _ = CloseUntaken();
            if (_readyFd >= 0)
            {
                // Never ready: the previous supervisor reads end of file and goes on serving.
                _ = Libc.Close(_readyFd);
                _readyFd = -1;
            }
        }
    }

    private int CloseUntaken()
    {
        var count = 0;
        foreach (var fd in _sockets?.Values.SelectMany(f => f) ?? [])
        {
            _ = Libc.Close(fd);
            count++;
        }

        _sockets?.Clear();
        return count;
    }

    private void Read()
    {
        if (_sockets is not null)
        {
            return;
        }

        _sockets = new(StringComparer.Ordinal);
        var sockets = Environment.GetEnvironmentVariable(SocketsVariable);
        var ready = Environment.GetEnvironmentVariable(ReadyVariable);
        if (sockets is null && ready is null)
        {
            return;
        }

        Libc.RemoveEnvironmentVariable(SocketsVariable);
        Libc.RemoveEnvironmentVariable(ReadyVariable);
        try
        {
            foreach (var entry in (sockets ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var separator = entry.LastIndexOf('=');
                _sockets[WorkerEnvironment.UnescapeEndpoint(entry[..separator])] =
                    [.. entry[(separator + 1)..].Split(',').Select(f => int.Parse(f, CultureInfo.InvariantCulture))];
            }

            var fields = ReadyFields(ready ?? "");
            _readyFd = int.Parse(fields["ready"], CultureInfo.InvariantCulture);
            _from = int.Parse(fields["from"], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException or KeyNotFoundException or ArgumentOutOfRangeException)
        {
            throw new InvalidOperationException(
                $"{SocketsVariable}='{sockets}' / {ReadyVariable}='{ready}' is not what a supervisor writes when it starts its successor on SIGUSR2. Remove these variables unless one did.", e);
        }

        // Close-on-exec from here on, like every descriptor the supervisor opens itself: workers get theirs by dup2.
        foreach (var fd in _sockets.Values.SelectMany(f => f).Append(_readyFd))
        {
            Libc.SetCloseOnExec(fd, true);
        }
    }

    /// <summary><see cref="ReadyVariable"/>'s <c>name=value</c> fields; empty when a name repeats, which no supervisor writes.</summary>
    private static Dictionary<string, string> ReadyFields(string ready)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var field in ready.Split(';'))
        {
            var parts = field.Split('=', 2);
            if (!fields.TryAdd(parts[0], parts.Length > 1 ? parts[1] : ""))
            {
                return [];
            }
        }

        return fields;
    }
}
