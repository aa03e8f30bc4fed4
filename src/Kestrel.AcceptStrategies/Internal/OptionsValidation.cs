using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// Checks every option of both products at once, so a bad configuration fails start-up (or a SIGHUP reload) with one
/// message that lists every problem. A value that failed to bind is reported once: checks that compare it with
/// another option skip it.
/// </summary>
internal static class OptionsValidation
{
    public const int MaxAcceptors = 1024;
    public const int MaxWorkers = 1024;
    public static readonly TimeSpan MinWorkerLifetime = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MinHangTimeout = TimeSpan.FromSeconds(1);

    // Beyond these a value is a unit mistake (seconds written as days), not a policy.
    private static readonly TimeSpan OneHour = TimeSpan.FromHours(1);
    private static readonly TimeSpan OneDay = TimeSpan.FromDays(1);
    private static readonly TimeSpan OneYear = TimeSpan.FromDays(365);

    private const string T = AcceptStrategyOptions.SectionName;
    private const string W = WorkerProcessOptions.SectionName;

    /// <summary>Every problem of the transport options and, when worker processes are in use, of theirs.</summary>
    /// <param name="transport">The transport options.</param>
    /// <param name="workers">The worker options; null when the app did not call <c>UseWorkerProcesses()</c>.</param>
    /// <param name="inWorker">This process is a worker: the supervisor already checked what only it acts on.</param>
    public static List<string> Validate(AcceptStrategyOptions transport, WorkerProcessOptions? workers, bool inWorker)
    {
        var errors = new List<string>(transport.ConfigurationProblems.Messages);
        if (workers is not null)
        {
            errors.AddRange(workers.ConfigurationProblems.Messages);
        }

        if (!OperatingSystem.IsLinux())
        {
            errors.Add($"Kestrel.AcceptStrategies runs on Linux only (its acceptors wait in epoll(7) sets with EPOLLEXCLUSIVE and an eventfd(2), and worker mode uses posix_spawn(3) and pidfds); this is {RuntimeInformation.OSDescription}. Call UseAcceptStrategy() only when OperatingSystem.IsLinux().");
        }

        ValidateTransport(errors, transport);
        if (workers is not null)
        {
            ValidateWorkers(errors, workers);
            ValidatePool(errors, workers, transport, inWorker);
        }

        return errors;
    }

    private static void ValidateTransport(List<string> errors, AcceptStrategyOptions options)
    {
        if (!Enum.IsDefined(options.Strategy))
        {
            errors.Add($"{T}:Strategy = {(int)options.Strategy} is not a strategy: expected one of {string.Join(", ", Enum.GetNames<AcceptStrategy>())}.");
        }

        if (options.Acceptors is < 1 or > MaxAcceptors)
        {
            errors.Add($"{T}:Acceptors = {options.Acceptors} is out of range: it must be between 1 and {MaxAcceptors}.");
        }
    }

    private static void ValidateWorkers(List<string> errors, WorkerProcessOptions options)
    {
        var bound = options.ConfigurationProblems;
        if (!Enum.IsDefined(options.RuntimeProfile))
        {
            errors.Add($"{W}:RuntimeProfile = {(int)options.RuntimeProfile} is not a profile: expected one of {string.Join(", ", Enum.GetNames<WorkerRuntimeProfile>())}.");
        }

        if (options.Workers is < 0 or > MaxWorkers)
        {
            errors.Add($"{W}:Workers = {options.Workers} is out of range: it must be between 0 (one process) and {MaxWorkers}.");
        }

        if (options.MaxRequestsPerWorker < 0)
        {
            errors.Add($"{W}:MaxRequestsPerWorker = {options.MaxRequestsPerWorker} is negative: use 0 for no limit.");
        }

        if (options.MinRequestsPerWorker < 0)
        {
            errors.Add($"{W}:MinRequestsPerWorker = {options.MinRequestsPerWorker} is negative: use 0 for 90% of MaxRequestsPerWorker.");
        }
        else if (options.MinRequestsPerWorker > 0 && options.MaxRequestsPerWorker == 0 && bound.Bound(nameof(options.MaxRequestsPerWorker)))
        {
            errors.Add($"{W}:MinRequestsPerWorker = {options.MinRequestsPerWorker} needs MaxRequestsPerWorker: without it workers are never recycled for their request count.");
        }
        else if (options.MinRequestsPerWorker > 0 && options.MaxRequestsPerWorker > 0 && options.MinRequestsPerWorker > options.MaxRequestsPerWorker)
        {
            // Only between two valid values: Min = 0 means 90% of Max, and a negative Max is reported above.
            errors.Add($"{W}:MinRequestsPerWorker = {options.MinRequestsPerWorker} is above MaxRequestsPerWorker = {options.MaxRequestsPerWorker}.");
        }

        if (options.MaxWorkerLifetime < TimeSpan.Zero
            || (options.MaxWorkerLifetime > TimeSpan.Zero && options.MaxWorkerLifetime < MinWorkerLifetime)
            || options.MaxWorkerLifetime > OneYear)
        {
            // Shorter than a worker's start-up, every worker would be replaced before its successor is ready.
            errors.Add($"{W}:MaxWorkerLifetime = {options.MaxWorkerLifetime} is out of range: use 0 for no limit, or between {MinWorkerLifetime} and {OneYear} (d.hh:mm:ss).");
        }

        if (options.MaxWorkerMemoryMegabytes < 0)
        {
            errors.Add($"{W}:MaxWorkerMemoryMegabytes = {options.MaxWorkerMemoryMegabytes} is negative: use 0 for no limit.");
        }

        InRange(errors, nameof(options.SpawnInterval), options.SpawnInterval, TimeSpan.Zero, OneHour, "use 0 for no pause");
        if (options.HangTimeout < TimeSpan.Zero || options.HangTimeout > OneHour || (options.HangTimeout > TimeSpan.Zero && options.HangTimeout < MinHangTimeout))
        {
            // A worker's heartbeats come 100 ms apart at best: a shorter verdict would kill workers that are not hung.
            errors.Add($"{W}:HangTimeout = {options.HangTimeout} is out of range: it must be 0 (use 0 to turn hang detection off) or between {MinHangTimeout} and {OneHour}, written hh:mm:ss (00:00:30 is 30 seconds).");
        }

        InRange(errors, nameof(options.RespawnBackoff), options.RespawnBackoff, TimeSpan.FromMilliseconds(1), OneHour, null);
        InRange(errors, nameof(options.MaxRespawnBackoff), options.MaxRespawnBackoff, TimeSpan.FromMilliseconds(1), OneDay, null);
        InRange(errors, nameof(options.GracefulShutdownTimeout), options.GracefulShutdownTimeout, TimeSpan.FromMilliseconds(1), OneHour, null);
        InRange(errors, nameof(options.WorkerStartTimeout), options.WorkerStartTimeout, TimeSpan.FromMilliseconds(1), OneHour, null);

        if (options.RespawnBackoff > TimeSpan.Zero && options.MaxRespawnBackoff > TimeSpan.Zero && options.MaxRespawnBackoff < options.RespawnBackoff
            && bound.Bound(nameof(options.RespawnBackoff)) && bound.Bound(nameof(options.MaxRespawnBackoff)))
        {
            errors.Add($"{W}:MaxRespawnBackoff = {options.MaxRespawnBackoff} is below RespawnBackoff = {options.RespawnBackoff}.");
        }

        if (!string.IsNullOrEmpty(options.WarmupPath) && !options.WarmupPath.StartsWith('/'))
        {
            errors.Add($"{W}:WarmupPath = '{options.WarmupPath}' must start with '/' (or be empty to skip the warm-up request).");
        }

        if (!string.IsNullOrEmpty(options.StatusEndpoint))
        {
            if (!StatusEndpointAddress.TryParse(options.StatusEndpoint, out _, out var statusError))
            {
                errors.Add($"{W}:StatusEndpoint = '{options.StatusEndpoint}' is not valid: {statusError}.");
            }

            if (options.Workers == 0 && bound.Bound(nameof(options.Workers)))
            {
                errors.Add($"{W}:StatusEndpoint = '{options.StatusEndpoint}' needs Workers > 0: the status view is the supervisor's, and one process has no supervisor.");
            }
        }
    }

    private static void ValidatePool(List<string> errors, WorkerProcessOptions options, AcceptStrategyOptions transport, bool inWorker)
    {
        var bound = options.ConfigurationProblems;
        var workersKnown = bound.Bound(nameof(options.Workers));
        if (options.MaxWorkers is < 0 or > MaxWorkers)
        {
            errors.Add($"{W}:MaxWorkers = {options.MaxWorkers} is out of range: it must be between 0 (a pool fixed at Workers) and {MaxWorkers}.");
        }
        else if (options.MaxWorkers > 0 && options.Workers == 0 && workersKnown)
        {
            errors.Add($"{W}:MaxWorkers = {options.MaxWorkers} needs worker mode: with Workers = 0 the app is one process and has no pool. Set Workers to the number of workers to start (at least 1).");
        }
        else if (options.MaxWorkers > 0 && options.Workers > options.MaxWorkers && workersKnown)
        {
            errors.Add($"{W}:MaxWorkers = {options.MaxWorkers} is below Workers = {options.Workers}, the number started: raise MaxWorkers, or use 0 for a pool fixed at Workers.");
        }

        if (options.MinSpareWorkers < 0)
        {
            errors.Add($"{W}:MinSpareWorkers = {options.MinSpareWorkers} is negative.");
        }

        if (options.MaxSpareWorkers < 0)
        {
            errors.Add($"{W}:MaxSpareWorkers = {options.MaxSpareWorkers} is negative.");
        }
        else if (options.MinSpareWorkers > options.MaxSpareWorkers
            && bound.Bound(nameof(options.MinSpareWorkers)) && bound.Bound(nameof(options.MaxSpareWorkers)))
        {
            errors.Add($"{W}:MinSpareWorkers = {options.MinSpareWorkers} is above MaxSpareWorkers = {options.MaxSpareWorkers}: the pool would grow and shrink in turn.");
        }

        // A shrink drains a slot's worker; the supervisor steers new connections away from the slot first and keeps its
        // SO_REUSEPORT sockets. Where the kernel refuses the steering program it closes them instead, and only the kernel
        // can move what is queued on them elsewhere. The supervisor decides (at start-up and SIGHUP); a worker, which
        // only accepts, never fails to start over it.
        if (options is { MaxWorkers: > 0, Workers: > 0 } && transport.Strategy == AcceptStrategy.ReusePort
            && !inWorker && ReusePortSteering.Unavailable is var steering and not 0 && TcpMigrateReq() is var migrate && migrate != "1")
        {
            errors.Add($"{W}:MaxWorkers = {options.MaxWorkers} with {T}:Strategy = ReusePort needs the kernel to steer connections between a group's sockets (SO_ATTACH_REUSEPORT_CBPF failed here: {Libc.ErrnoName(steering)}) or net.ipv4.tcp_migrate_req = 1 (it is {migrate}): a shrinking pool closes a worker slot's SO_REUSEPORT sockets, and without either the kernel resets the connections queued on them. Allow SO_ATTACH_REUSEPORT_CBPF in the seccomp profile, or run 'sysctl -w net.ipv4.tcp_migrate_req=1' (Linux 5.14 or later), or choose Serialized or ThunderingHerd, whose one shared socket outlives any worker.");
        }
    }

    /// <summary>The sysctl as this network namespace has it; "missing" before Linux 5.14.</summary>
    internal static string TcpMigrateReq()
    {
        try
        {
            return File.ReadAllText("/proc/sys/net/ipv4/tcp_migrate_req").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "missing";
        }
    }

    private static void InRange(List<string> errors, string name, TimeSpan value, TimeSpan min, TimeSpan max, string? zero)
    {
        if (value < min || value > max)
        {
            var lower = min == TimeSpan.Zero ? $"between 0 ({zero}) and {max}" : $"above 0 and at most {max}";
            errors.Add($"{W}:{name} = {value} is out of range: it must be {lower}, written hh:mm:ss (00:00:30 is 30 seconds).");
        }
    }
}
