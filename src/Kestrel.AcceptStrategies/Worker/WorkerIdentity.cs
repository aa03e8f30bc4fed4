using System.Globalization;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Who this worker is, as its supervisor said through the environment (<see cref="WorkerEnvironment"/>): slot,
/// generation, request budget, the control socket, and for each endpoint the inherited descriptors that listen on it
/// and of its (already unlinked) accept lock file.
/// </summary>
/// <remarks>
/// Read (without changing anything) by <c>UseWorkerProcesses()</c>, which registers the result in the services;
/// everything else gets it injected. The host's start claims it (<see cref="Claim"/>).
/// </remarks>
internal sealed class WorkerIdentity
{
    private static readonly Lazy<WorkerIdentity?> LazyCurrent = new(Read);
    private int _claimed;

    private readonly Dictionary<string, Queue<InheritedEndpoint>> _endpoints;

    internal WorkerIdentity(
        int slot, int generation, long budget, int controlFd, AcceptStrategy strategy, int? acceptors, Dictionary<string, Queue<InheritedEndpoint>> endpoints)
    {
        Acceptors = acceptors;
        Slot = slot;
        Generation = generation;
        Budget = budget;
        ControlFd = controlFd;
        Strategy = strategy;
        _endpoints = endpoints;
    }

    /// <summary>
    /// This process's worker identity, null when it is not a worker. Reading changes nothing; <see cref="Claim"/> does,
    /// at host start. Read once: after the claim the variables are gone, and every later call (another host in the
    /// process) gets the first result.
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
    /// The supervisor's <c>Acceptors</c> (null from a supervisor of an earlier build): like the strategy, fixed for the
    /// supervisor's life, so a reload that changed it in configuration changes nothing until the supervisor restarts.
    /// </summary>
    public int? Acceptors { get; }

    /// <summary>Takes the descriptors for the next binding of <paramref name="endpoint"/> (as Kestrel asked for it).</summary>
    public InheritedEndpoint? TakeEndpoint(string endpoint) =>
        _endpoints.TryGetValue(endpoint, out var queue) && queue.TryDequeue(out var inherited) ? inherited : null;

    public IEnumerable<string> Endpoints => _endpoints.Keys;

    /// <summary>
    /// Reads the variables a supervisor wrote; throws one error naming them when they are not that. A supervisor of an
    /// earlier build passes no <see cref="WorkerEnvironment.LockFdsVariable"/>, only one <c>lockfd</c> that every
    /// endpoint shares (a worker SIGHUP starts after an upgrade gets that), and those endpoints share it still.
    /// </summary>
    internal static WorkerIdentity Parse(string worker, string listen, string? locks)
    {
        try
        {
            var fields = worker.Split(';').Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f.Length > 1 ? f[1] : "");
            int? sharedLock = fields.TryGetValue("lockfd", out var lockFd) && lockFd.Length > 0 ? int.Parse(lockFd, CultureInfo.InvariantCulture) : null;
            var lockQueues = new Dictionary<string, Queue<int[]>>();
            foreach (var (endpoint, fds) in ParseFds(locks ?? ""))
            {
                Enqueue(lockQueues, endpoint, fds.Length == 1 ? fds : throw new FormatException($"{endpoint} has {fds.Length} accept locks"));
            }

            var endpoints = new Dictionary<string, Queue<InheritedEndpoint>>();
            foreach (var (endpoint, fds) in ParseFds(listen))
            {
                var acceptLock = locks is null ? sharedLock
                    : lockQueues.TryGetValue(endpoint, out var queue) && queue.TryDequeue(out var own) ? own[0]
                    : null;
                Enqueue(endpoints, endpoint, new InheritedEndpoint(fds, acceptLock));
            }

            if (lockQueues.FirstOrDefault(q => q.Value.Count > 0).Key is { } unmatched)
            {
                throw new FormatException($"an accept lock for {unmatched} beyond its listening sockets");
            }

            return new WorkerIdentity(
                int.Parse(fields["slot"], CultureInfo.InvariantCulture),
                int.Parse(fields["generation"], CultureInfo.InvariantCulture),
                long.Parse(fields["budget"], CultureInfo.InvariantCulture),
                int.Parse(fields["control"], CultureInfo.InvariantCulture),
                Enum.Parse<AcceptStrategy>(fields["strategy"]),
                fields.TryGetValue("acceptors", out var acceptors) && acceptors.Length > 0 ? int.Parse(acceptors, CultureInfo.InvariantCulture) : null,
                endpoints);
        }
        catch (Exception e) when (e is FormatException or KeyNotFoundException or ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            throw new InvalidOperationException(
                $"{WorkerEnvironment.WorkerVariable}='{worker}' / {WorkerEnvironment.ListenFdsVariable}='{listen}' / {WorkerEnvironment.LockFdsVariable}='{locks}' is not a worker environment written by a Kestrel.AcceptStrategies supervisor. Remove these variables unless a supervisor started this process.",
                e);
        }
    }

    private static WorkerIdentity? Read()
    {
        var worker = Environment.GetEnvironmentVariable(WorkerEnvironment.WorkerVariable);
        return worker is null ? null : Parse(
            worker,
            Environment.GetEnvironmentVariable(WorkerEnvironment.ListenFdsVariable) ?? "",
            Environment.GetEnvironmentVariable(WorkerEnvironment.LockFdsVariable));
    }

    /// <summary>
    /// Makes this process a worker, once, when the host starts: the variables go, and the inherited descriptors become
    /// close-on-exec, so nothing this worker starts holds the supervisor's sockets or lock files or believes it is a
    /// worker. (The terminal's signals are taken over earlier, <see cref="WorkerSignals"/>.)
    /// </summary>
    public void Claim()
    {
        if (Interlocked.Exchange(ref _claimed, 1) != 0)
        {
            return;
        }

        Libc.RemoveEnvironmentVariable(WorkerEnvironment.WorkerVariable);
        Libc.RemoveEnvironmentVariable(WorkerEnvironment.ListenFdsVariable);
        Libc.RemoveEnvironmentVariable(WorkerEnvironment.LockFdsVariable);
        Libc.SetCloseOnExec(ControlFd, true);
        foreach (var inherited in _endpoints.Values.SelectMany(q => q))
        {
            if (inherited.LockFd is { } acceptLock)
            {
                Libc.SetCloseOnExec(acceptLock, true);
            }

            foreach (var fd in inherited.Fds)
            {
                Libc.SetCloseOnExec(fd, true);
            }
        }
    }

    /// <summary><c>ENDPOINT=FD[,FD...]</c> entries, <c>;</c>-separated, in order (<see cref="WorkerEnvironment.FormatFds"/>).</summary>
    private static IEnumerable<(string Endpoint, int[] Fds)> ParseFds(string value)
    {
        foreach (var entry in value.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var separator = entry.LastIndexOf('=');
            yield return (WorkerEnvironment.UnescapeEndpoint(entry[..separator]), [.. entry[(separator + 1)..].Split(',').Select(f => int.Parse(f, CultureInfo.InvariantCulture))]);
        }
    }

    private static void Enqueue<T>(Dictionary<string, Queue<T>> queues, string endpoint, T value)
    {
        if (!queues.TryGetValue(endpoint, out var queue))
        {
            queues[endpoint] = queue = new Queue<T>();
        }

        queue.Enqueue(value);
    }
}
