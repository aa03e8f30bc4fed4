using System.Globalization;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Supervisor;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Who this worker is, as its supervisor said through the environment (<see cref="WorkerEnvironment"/>): slot,
/// generation, request budget, the control socket, the inherited descriptor of the (already unlinked) accept lock
/// file, and which inherited descriptor listens on which endpoint.
/// </summary>
/// <remarks>
/// Read once, as early as <c>UseAcceptStrategy()</c>: the inherited descriptors are marked close-on-exec again and
/// the variables removed, so no process the worker starts inherits a listening socket or believes it is a worker.
/// <c>UseAcceptStrategy()</c> registers the result in the services; everything else gets it injected.
/// </remarks>
internal sealed class WorkerIdentity
{
    private static readonly Lazy<WorkerIdentity?> LazyCurrent = new(ReadAndClear);

    private readonly Dictionary<string, Queue<int[]>> _listenFds;

    internal WorkerIdentity(
        int slot, int generation, long budget, int controlFd, AcceptStrategy strategy, int? lockFd, Dictionary<string, Queue<int[]>> listenFds)
    {
        Slot = slot;
        Generation = generation;
        Budget = budget;
        ControlFd = controlFd;
        Strategy = strategy;
        LockFd = lockFd;
        _listenFds = listenFds;
    }

    /// <summary>
    /// This process's worker identity, null when it is not a worker. For <c>UseAcceptStrategy()</c> only: the
    /// variables are gone after the first read, so every later call (another host in the process) gets that result.
    /// </summary>
    public static WorkerIdentity? ReadOnce() => LazyCurrent.Value;

    public int Slot { get; }

    public int Generation { get; }

    /// <summary>Requests this worker serves before it asks to be replaced; 0 for no limit.</summary>
    public long Budget { get; }

    public int ControlFd { get; }

    /// <summary>The supervisor's strategy, which decided how the inherited sockets were made.</summary>
    public AcceptStrategy Strategy { get; }

    /// <summary>
    /// The accept lock file, open and unlinked (no path a tmp cleaner could remove). Each acceptor opens
    /// <c>/proc/self/fd/N</c> for an open file description, and so a flock, of its own.
    /// </summary>
    public int? LockFd { get; }

    /// <summary>Takes the descriptors for the next binding of <paramref name="endpoint"/> (as Kestrel asked for it).</summary>
    public int[]? TakeListenFds(string endpoint) =>
        _listenFds.TryGetValue(endpoint, out var queue) && queue.TryDequeue(out var fds) ? fds : null;

    public IEnumerable<string> Endpoints => _listenFds.Keys;

    private static WorkerIdentity? ReadAndClear()
    {
        var worker = Environment.GetEnvironmentVariable(WorkerEnvironment.WorkerVariable);
        if (worker is null)
        {
            return null;
        }

        // First of all: the terminal's signals, blocked since the spawn, are caught from here on.
        WorkerSignals.TakeOver();

        var listen = Environment.GetEnvironmentVariable(WorkerEnvironment.ListenFdsVariable) ?? "";
        Libc.RemoveEnvironmentVariable(WorkerEnvironment.WorkerVariable);
        Libc.RemoveEnvironmentVariable(WorkerEnvironment.ListenFdsVariable);

        try
        {
            var fields = worker.Split(';').Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f.Length > 1 ? f[1] : "");
            var listenFds = new Dictionary<string, Queue<int[]>>();
            foreach (var entry in listen.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var separator = entry.LastIndexOf('=');
                var fds = entry[(separator + 1)..].Split(',').Select(f => int.Parse(f, CultureInfo.InvariantCulture)).ToArray();
                var endpoint = entry[..separator];
                if (!listenFds.TryGetValue(endpoint, out var queue))
                {
                    listenFds[endpoint] = queue = new Queue<int[]>();
                }

                queue.Enqueue(fds);
            }

            var environment = new WorkerIdentity(
                int.Parse(fields["slot"], CultureInfo.InvariantCulture),
                int.Parse(fields["generation"], CultureInfo.InvariantCulture),
                long.Parse(fields["budget"], CultureInfo.InvariantCulture),
                int.Parse(fields["control"], CultureInfo.InvariantCulture),
                Enum.Parse<AcceptStrategy>(fields["strategy"]),
                fields.TryGetValue("lockfd", out var lockFd) && lockFd.Length > 0 ? int.Parse(lockFd, CultureInfo.InvariantCulture) : null,
                listenFds);

            // Inherited without close-on-exec; nothing this worker starts may hold the supervisor's sockets.
            Libc.SetCloseOnExec(environment.ControlFd, true);
            if (environment.LockFd is { } inheritedLock)
            {
                Libc.SetCloseOnExec(inheritedLock, true);
            }

            foreach (var fds in listenFds.Values.SelectMany(q => q))
            {
                foreach (var fd in fds)
                {
                    Libc.SetCloseOnExec(fd, true);
                }
            }

            return environment;
        }
        catch (Exception e) when (e is FormatException or KeyNotFoundException or ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            throw new InvalidOperationException(
                $"{WorkerEnvironment.WorkerVariable}='{worker}' / {WorkerEnvironment.ListenFdsVariable}='{listen}' is not a worker environment written by a Kestrel.AcceptStrategies supervisor. Remove these variables unless a supervisor started this process.",
                e);
        }
    }
}
