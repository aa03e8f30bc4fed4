namespace Kestrel.AcceptStrategies.WorkerProcesses;

/// <summary>
/// Worker process options: a supervisor that pre-starts copies of the app, recycles, respawns and reloads them, as
/// Starlet, gunicorn and mod_perl do. Bound from the <c>WorkerProcesses</c> configuration section by
/// <c>UseWorkerProcesses()</c>; code configuration runs after the binding and wins. The workers accept with the
/// transport's <see cref="AcceptStrategyOptions"/>.
/// </summary>
public sealed class WorkerProcessOptions
{
    /// <summary>
    /// The name of the configuration section the options are bound from.
    /// </summary>
    public const string SectionName = "WorkerProcesses";

    /// <summary>
    /// The number of worker processes (Starlet's <c>--max-workers</c>, Starman's and gunicorn's <c>--workers</c>).
    /// When above 0, the process started by the user becomes a supervisor: it binds every IP endpoint, serves no
    /// requests, and starts this many copies of the app that accept on the inherited sockets with <see cref="AcceptStrategyOptions.Strategy"/>.
    /// </summary>
    /// <remarks>Defaults to 0: one process, no supervisor.</remarks>
    public int Workers { get; set; }

    /// <summary>
    /// The most workers the adaptive pool grows to (mod_perl's <c>PerlInterpMax</c>, Apache's <c>MaxRequestWorkers</c>,
    /// uWSGI's <c>workers</c> under its cheaper subsystem). Above 0, the pool starts <see cref="Workers"/> workers and
    /// then adds one at a time while fewer than <see cref="MinSpareWorkers"/> are spare, and drains the most idle one
    /// while more than <see cref="MaxSpareWorkers"/> are, never below one. A worker's spare share is measured: the part
    /// of the last two seconds it had no request in flight.
    /// </summary>
    /// <remarks>
    /// Defaults to 0: the pool is fixed at <see cref="Workers"/>. At least <see cref="Workers"/> otherwise. With
    /// <see cref="AcceptStrategy.ReusePort"/> a drained worker's slot keeps its sockets and new connections are steered
    /// around it; only where the kernel (or a seccomp profile) refuses <c>SO_ATTACH_REUSEPORT_CBPF</c> does the pool
    /// close them and need <c>net.ipv4.tcp_migrate_req = 1</c>, so that the kernel moves what is queued on them.
    /// </remarks>
    public int MaxWorkers { get; set; }

    /// <summary>
    /// The adaptive pool grows while its workers are together less spare than this many idle workers (mod_perl's
    /// <c>PerlInterpMinSpare</c>, Apache's <c>MinSpareServers</c>). Acts only when <see cref="MaxWorkers"/> is above 0.
    /// </summary>
    /// <remarks>Defaults to 1: one worker's worth of headroom for the next burst.</remarks>
    public int MinSpareWorkers { get; set; } = 1;

    /// <summary>
    /// The adaptive pool drains its most idle worker while its workers are together more spare than this many idle
    /// workers for 5 seconds (mod_perl's <c>PerlInterpMaxSpare</c>, Apache's <c>MaxSpareServers</c>), and only if
    /// <see cref="MinSpareWorkers"/> are still spare without it. Acts only when <see cref="MaxWorkers"/> is above 0.
    /// </summary>
    /// <remarks>Defaults to 2.</remarks>
    public int MaxSpareWorkers { get; set; } = 2;

    /// <summary>
    /// The most requests a worker serves before it is replaced (Starlet's <c>--max-reqs-per-child</c>, Starman's
    /// <c>--max-requests</c>, gunicorn's <c>--max-requests</c>). Every request counts, keep-alive ones included. Each
    /// worker's budget is drawn uniformly from [<see cref="MinRequestsPerWorker"/>, <see cref="MaxRequestsPerWorker"/>]
    /// so workers do not recycle together. A worker keeps accepting past its budget until its replacement is ready.
    /// </summary>
    /// <remarks>Defaults to 0: workers are never recycled for their request count.</remarks>
    public int MaxRequestsPerWorker { get; set; }

    /// <summary>
    /// The lower bound of a worker's request budget (Starlet's <c>--min-reqs-per-child</c>; gunicorn's
    /// <c>--max-requests-jitter</c> is <c>Max - Min</c>).
    /// </summary>
    /// <remarks>Defaults to 0, which means 90% of <see cref="MaxRequestsPerWorker"/>.</remarks>
    public int MinRequestsPerWorker { get; set; }

    /// <summary>
    /// The longest a worker lives before it is replaced (uWSGI's <c>max-worker-lifetime</c>), counted from its start.
    /// Each worker's lifetime is drawn uniformly from [90%, 100%] of this so workers do not recycle together; its
    /// replacement starts early enough to be ready by then, and the worker keeps accepting until it is.
    /// </summary>
    /// <remarks>Defaults to <see cref="TimeSpan.Zero"/>: no limit. At least one second otherwise.</remarks>
    public TimeSpan MaxWorkerLifetime { get; set; }

    /// <summary>
    /// A worker whose resident memory (VmRSS, as the kernel counts it, read by the supervisor at each heartbeat)
    /// passes this many megabytes is replaced (uWSGI's <c>reload-on-rss</c>). It keeps accepting until its replacement
    /// is ready, so it can pass the limit by what it allocates in a start-up time.
    /// </summary>
    /// <remarks>Defaults to 0: no limit.</remarks>
    public int MaxWorkerMemoryMegabytes { get; set; }

    /// <summary>
    /// The least time between two worker starts after the first set (Starlet's <c>--spawn-interval</c>): a recycle,
    /// respawn or reload starts at most one worker per interval, so a rolling restart is a slow one.
    /// </summary>
    /// <remarks>Defaults to <see cref="TimeSpan.Zero"/>: no pause.</remarks>
    public TimeSpan SpawnInterval { get; set; }

    /// <summary>
    /// How long the supervisor waits before starting a worker again after one failed to start (exited or timed out
    /// before it was ready). The delay doubles with each consecutive failure in the same slot, up to
    /// <see cref="MaxRespawnBackoff"/>. A worker that crashes after it was ready is replaced at once; but a crash within
    /// 10 seconds of being ready counts as a failure, so the next such crash or failed start in the slot backs off. A
    /// worker that stays up 10 seconds clears its slot's failures.
    /// </summary>
    /// <remarks>Defaults to 1 second.</remarks>
    public TimeSpan RespawnBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest delay between attempts to start a worker that keeps failing.</summary>
    /// <remarks>Defaults to 1 minute.</remarks>
    public TimeSpan MaxRespawnBackoff { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long a worker that stops accepting (recycled, reloaded, scaled down or shut down) may take to finish its
    /// requests before it is killed (gunicorn's <c>--graceful-timeout</c>). Also the shutdown timeout of every worker.
    /// </summary>
    /// <remarks>Defaults to 30 seconds.</remarks>
    public TimeSpan GracefulShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a new worker may take to start and warm up before it is killed and counted as failed to start.</summary>
    /// <remarks>Defaults to 1 minute.</remarks>
    public TimeSpan WorkerStartTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long a worker may go without a heartbeat before it is killed and replaced (gunicorn's <c>--timeout</c>).
    /// Heartbeats come from the worker's thread pool, so a worker whose thread pool is starved or deadlocked counts as hung.
    /// </summary>
    /// <remarks>Defaults to 30 seconds. <see cref="TimeSpan.Zero"/> turns hang detection off; otherwise at least 1 second.</remarks>
    public TimeSpan HangTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The path a new worker requests from itself (over a private socket pair, no port, with the endpoint's real Host
    /// header) before it reports ready, so its first real request does not pay for JIT compilation and lazy
    /// initialisation. Any status code counts as warm.
    /// </summary>
    /// <remarks>Defaults to <c>/</c>. An empty value skips the warm-up request.</remarks>
    public string WarmupPath { get; set; } = "/";

    /// <summary>
    /// The runtime settings workers start with: <see cref="WorkerRuntimeProfile.Tuned"/> adds settings measured for
    /// many processes per machine (no thread-pool spinning, …; see docs/runtime-profile.md) wherever the user set nothing;
    /// <see cref="WorkerRuntimeProfile.Inherit"/> leaves the workers' environment exactly as the supervisor's.
    /// </summary>
    /// <remarks>Defaults to <see cref="WorkerRuntimeProfile.Tuned"/>. A change takes effect at the next start of the app.</remarks>
    public WorkerRuntimeProfile RuntimeProfile { get; set; } = WorkerRuntimeProfile.Tuned;

    /// <summary>
    /// Where the supervisor serves its status view (Puma's <c>/stats</c>, uWSGI's stats server, Apache's scoreboard):
    /// <c>http://127.0.0.1:PORT</c> (any 127.0.0.0/8 address), <c>http://[::1]:PORT</c>, <c>http://localhost:PORT</c>
    /// (127.0.0.1) or <c>unix:/absolute/path</c> (created with mode 0600). Port 0 picks a free port, logged at start
    /// (event 60). <c>GET /</c> answers JSON, <c>GET /?format=text</c> a table: every live worker with its state and counts.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="null"/> (or empty): no status view. Needs <see cref="Workers"/> &gt; 0; never one of the
    /// app's endpoints, never inherited by workers. A change takes effect at the next start of the app.
    /// </remarks>
    public string? StatusEndpoint { get; set; }

    /// <summary>Problems found while binding configuration, reported by validation together with the rest.</summary>
    internal ConfigurationProblems ConfigurationProblems { get; } = new();
}
