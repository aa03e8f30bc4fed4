using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Status;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Checks every option at once, so a bad configuration fails start-up with one message that lists every problem.
/// </summary>
internal sealed class AcceptStrategyOptionsValidator : IValidateOptions<AcceptStrategyOptions>
{
    public const int MaxAcceptors = 1024;
    public const int MaxWorkers = SlotPolicy.MaxSlots;
    public static readonly TimeSpan MaxWorkerStartTimeout = TimeSpan.FromMilliseconds(int.MaxValue);
    public static readonly TimeSpan MinWorkerLifetime = TimeSpan.FromSeconds(1);

    public ValidateOptionsResult Validate(string? name, AcceptStrategyOptions options)
    {
        var errors = new List<string>(options.ConfigurationErrors);

        if (!OperatingSystem.IsLinux())
        {
            errors.Add($"Kestrel.AcceptStrategies runs on Linux only (its acceptors wait in epoll(7) sets with EPOLLEXCLUSIVE and an eventfd(2), and worker mode uses posix_spawn(3) and pidfds); this is {RuntimeInformation.OSDescription}. Call UseAcceptStrategy() only when OperatingSystem.IsLinux().");
        }

        if (!Enum.IsDefined(options.WorkerRuntimeProfile))
        {
            errors.Add($"AcceptStrategy:WorkerRuntimeProfile = {(int)options.WorkerRuntimeProfile} is not a profile: expected one of {string.Join(", ", Enum.GetNames<WorkerRuntimeProfile>())}.");
        }

        if (!Enum.IsDefined(options.Strategy))
        {
            errors.Add($"AcceptStrategy:Strategy = {(int)options.Strategy} is not a strategy: expected one of {string.Join(", ", Enum.GetNames<AcceptStrategy>())}.");
        }
        else if (options.Strategy == AcceptStrategy.ReusePort && !OperatingSystem.IsLinux())
        {
            errors.Add($"AcceptStrategy:Strategy = ReusePort needs Linux: only Linux balances new connections across SO_REUSEPORT sockets, and this is {RuntimeInformation.OSDescription}.");
        }

        if (options.Acceptors is < 1 or > MaxAcceptors)
        {
            errors.Add($"AcceptStrategy:Acceptors = {options.Acceptors} is out of range: it must be between 1 and {MaxAcceptors}.");
        }

        if (options.Workers is < 0 or > MaxWorkers)
        {
            errors.Add($"AcceptStrategy:Workers = {options.Workers} is out of range: it must be between 0 (one process) and {MaxWorkers}.");
        }

        ValidatePool(errors, options);

        if (options.MaxRequestsPerWorker < 0)
        {
            errors.Add($"AcceptStrategy:MaxRequestsPerWorker = {options.MaxRequestsPerWorker} is negative: use 0 for no limit.");
        }

        if (options.MinRequestsPerWorker < 0)
        {
            errors.Add($"AcceptStrategy:MinRequestsPerWorker = {options.MinRequestsPerWorker} is negative: use 0 for 90% of MaxRequestsPerWorker.");
        }
        else if (options.MinRequestsPerWorker > 0 && options.MaxRequestsPerWorker == 0)
        {
            errors.Add($"AcceptStrategy:MinRequestsPerWorker = {options.MinRequestsPerWorker} needs MaxRequestsPerWorker: without it workers are never recycled for their request count.");
        }
        else if (options.MinRequestsPerWorker > 0 && options.MaxRequestsPerWorker > 0 && options.MinRequestsPerWorker > options.MaxRequestsPerWorker)
        {
            // Only between two valid values: Min = 0 means 90% of Max, and a negative Max is reported above.
            errors.Add($"AcceptStrategy:MinRequestsPerWorker = {options.MinRequestsPerWorker} is above MaxRequestsPerWorker = {options.MaxRequestsPerWorker}.");
        }

        if (options.MaxWorkerLifetime < TimeSpan.Zero || (options.MaxWorkerLifetime > TimeSpan.Zero && options.MaxWorkerLifetime < MinWorkerLifetime))
        {
            // Shorter than a worker's start-up, every worker would be replaced before its successor is ready.
            errors.Add($"AcceptStrategy:MaxWorkerLifetime = {options.MaxWorkerLifetime} is out of range: use 0 for no limit, or at least {MinWorkerLifetime}.");
        }

        if (options.MaxWorkerMemoryMegabytes < 0)
        {
            errors.Add($"AcceptStrategy:MaxWorkerMemoryMegabytes = {options.MaxWorkerMemoryMegabytes} is negative: use 0 for no limit.");
        }

        NotNegative(errors, nameof(options.SpawnInterval), options.SpawnInterval);
        NotNegative(errors, nameof(options.HangTimeout), options.HangTimeout);
        Positive(errors, nameof(options.RespawnBackoff), options.RespawnBackoff);
        Positive(errors, nameof(options.MaxRespawnBackoff), options.MaxRespawnBackoff);
        Positive(errors, nameof(options.GracefulShutdownTimeout), options.GracefulShutdownTimeout);
        Positive(errors, nameof(options.WorkerStartTimeout), options.WorkerStartTimeout);
        if (options.WorkerStartTimeout > MaxWorkerStartTimeout)
        {
            // The warm-up request's HttpClient.Timeout cannot be longer.
            errors.Add($"AcceptStrategy:WorkerStartTimeout = {options.WorkerStartTimeout} is too long: at most {MaxWorkerStartTimeout}.");
        }

        if (options.RespawnBackoff > TimeSpan.Zero && options.MaxRespawnBackoff > TimeSpan.Zero && options.MaxRespawnBackoff < options.RespawnBackoff)
        {
            errors.Add($"AcceptStrategy:MaxRespawnBackoff = {options.MaxRespawnBackoff} is below RespawnBackoff = {options.RespawnBackoff}.");
        }

        if (!string.IsNullOrEmpty(options.WarmupPath) && !options.WarmupPath.StartsWith('/'))
        {
            errors.Add($"AcceptStrategy:WarmupPath = '{options.WarmupPath}' must start with '/' (or be empty to skip the warm-up request).");
        }

        if (!string.IsNullOrEmpty(options.StatusEndpoint))
        {
            if (!StatusEndpointAddress.TryParse(options.StatusEndpoint, out _, out var statusError))
            {
                errors.Add($"AcceptStrategy:StatusEndpoint = '{options.StatusEndpoint}' is not valid: {statusError}.");
            }

            if (options.Workers == 0)
            {
                errors.Add($"AcceptStrategy:StatusEndpoint = '{options.StatusEndpoint}' needs Workers > 0: the status view is the supervisor's, and one process has no supervisor.");
            }
        }

        return errors.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidatePool(List<string> errors, AcceptStrategyOptions options)
    {
        if (options.MaxWorkers is < 0 or > MaxWorkers)
        {
            errors.Add($"AcceptStrategy:MaxWorkers = {options.MaxWorkers} is out of range: it must be between 0 (a pool fixed at Workers) and {MaxWorkers}.");
        }
        else if (options.MaxWorkers > 0 && options.Workers == 0)
        {
            errors.Add($"AcceptStrategy:MaxWorkers = {options.MaxWorkers} needs worker mode: with Workers = 0 the app is one process and has no pool. Set Workers to the number of workers to start (at least 1).");
        }
        else if (options.MaxWorkers > 0 && options.Workers > options.MaxWorkers)
        {
            errors.Add($"AcceptStrategy:MaxWorkers = {options.MaxWorkers} is below Workers = {options.Workers}, the number started: raise MaxWorkers, or use 0 for a pool fixed at Workers.");
        }

        if (options.MinSpareWorkers < 0)
        {
            errors.Add($"AcceptStrategy:MinSpareWorkers = {options.MinSpareWorkers} is negative.");
        }

        if (options.MaxSpareWorkers < 0)
        {
            errors.Add($"AcceptStrategy:MaxSpareWorkers = {options.MaxSpareWorkers} is negative.");
        }
        else if (options.MinSpareWorkers > options.MaxSpareWorkers)
        {
            errors.Add($"AcceptStrategy:MinSpareWorkers = {options.MinSpareWorkers} is above MaxSpareWorkers = {options.MaxSpareWorkers}: the pool would grow and shrink in turn.");
        }

        // A shrink closes a slot's SO_REUSEPORT sockets; only the kernel can move what is queued on them elsewhere. The
        // supervisor decides (at start-up and SIGHUP); a worker, which only accepts, never fails to start over it.
        if (options is { MaxWorkers: > 0, Workers: > 0, Strategy: AcceptStrategy.ReusePort }
            && Worker.WorkerIdentity.ReadOnce() is null && TcpMigrateReq() is var migrate && migrate != "1")
        {
            errors.Add($"AcceptStrategy:MaxWorkers = {options.MaxWorkers} with Strategy = ReusePort needs net.ipv4.tcp_migrate_req = 1 (it is {migrate}): a shrinking pool closes a worker slot's SO_REUSEPORT sockets, and without it the kernel resets the connections queued on them. Run 'sysctl -w net.ipv4.tcp_migrate_req=1' (Linux 5.14 or later), or choose Serialized or ThunderingHerd, whose one shared socket outlives any worker.");
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

    private static void NotNegative(List<string> errors, string name, TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            errors.Add($"AcceptStrategy:{name} = {value} is negative.");
        }
    }

    private static void Positive(List<string> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"AcceptStrategy:{name} = {value} must be above zero.");
        }
    }
}
