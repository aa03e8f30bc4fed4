using System.Net;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>Every log message of the library, with stable event ids.</summary>
internal static partial class AcceptStrategyLog
{
    /// <summary>The prefix of every category: one <c>LogLevel</c> key for it covers the whole library.</summary>
    public const string CategoryName = "Kestrel.AcceptStrategies";

    /// <summary>The transport: acceptors and listeners.</summary>
    public const string ListenersCategory = CategoryName + ".Listeners";

    /// <summary>Role selection and Kestrel integration.</summary>
    public const string HostingCategory = CategoryName + ".Hosting";

    /// <summary>The supervisor: workers started, ready, exited, signals, reloads.</summary>
    public const string SupervisorCategory = CategoryName + ".Supervisor";

    /// <summary>A worker's own life: warm-up, drain, the supervisor gone.</summary>
    public const string WorkerCategory = CategoryName + ".Worker";

    // Information in one process; Debug in a worker, whose endpoints the supervisor's SupervisorBound already named.
    [LoggerMessage(EventId = 1, Message =
        "Accepting on {EndPoint} with {Strategy}: {Acceptors} acceptor(s) on {Sockets} listening socket(s), mutex {Mutex}, TCP_DEFER_ACCEPT {DeferAccept}.",
        EventName = "ListenerBound")]
    public static partial void ListenerBound(ILogger logger, LogLevel level, EndPoint endPoint, AcceptStrategy strategy, int acceptors, int sockets, string mutex, bool deferAccept);

    [LoggerMessage(2, LogLevel.Warning,
        "Acceptor {Acceptor} on {EndPoint} failed to accept: {Error}. Backing off {BackoffMilliseconds} ms and retrying; further errors are counted, not logged, until it recovers.",
        EventName = "AcceptError")]
    public static partial void AcceptError(ILogger logger, int acceptor, EndPoint endPoint, string error, int backoffMilliseconds);

    [LoggerMessage(3, LogLevel.Information,
        "Acceptor {Acceptor} on {EndPoint} is accepting again after {Errors} failed attempt(s).",
        EventName = "AcceptRecovered")]
    public static partial void AcceptRecovered(ILogger logger, int acceptor, EndPoint endPoint, int errors);

    [LoggerMessage(4, LogLevel.Error,
        "Acceptor {Acceptor} on {EndPoint} could not hand an accepted connection to Kestrel; the connection was closed.",
        EventName = "HandoffFailed")]
    public static partial void HandoffFailed(ILogger logger, int acceptor, EndPoint endPoint, Exception exception);

    [LoggerMessage(5, LogLevel.Debug,
        "Stopped accepting on {EndPoint}.",
        EventName = "ListenerUnbound")]
    public static partial void ListenerUnbound(ILogger logger, EndPoint endPoint);

    [LoggerMessage(10, LogLevel.Information,
        "Supervisor bound {EndPoint} with {Strategy} ({Sockets} listening socket(s)) for {Workers} worker(s); it serves no requests itself.",
        EventName = "SupervisorBound")]
    public static partial void SupervisorBound(ILogger logger, EndPoint endPoint, AcceptStrategy strategy, int sockets, int workers);

    [LoggerMessage(11, LogLevel.Information,
        "Worker {Pid} started in slot {Slot}, generation {Generation} ({Reason}); {Budget}.",
        EventName = "WorkerStarted")]
    private static partial void WorkerStarted(ILogger logger, int pid, int slot, int generation, string reason, string budget);

    public static void WorkerStarted(ILogger logger, int pid, int slot, int generation, string reason, long budget) =>
        WorkerStarted(logger, pid, slot, generation, reason, budget == 0 ? "no request budget" : "request budget " + budget.ToString(System.Globalization.CultureInfo.InvariantCulture));

    // StartupMilliseconds: spawn to ready as the supervisor saw it. ProcessMilliseconds and CpuMilliseconds: the
    // worker's own figures at ready (wall since its process started, CPU time); -1 when it did not report them.
    [LoggerMessage(12, LogLevel.Information,
        "Worker {Pid} (slot {Slot}, generation {Generation}) is ready after {StartupMilliseconds} ms ({ProcessMilliseconds} ms since its process started, {CpuMilliseconds} ms of CPU).",
        EventName = "WorkerReady")]
    private static partial void WorkerReady(ILogger logger, int pid, int slot, int generation, long startupMilliseconds, long processMilliseconds, long cpuMilliseconds);

    public static void WorkerReady(ILogger logger, int pid, int slot, int generation, TimeSpan startup, TimeSpan? process, TimeSpan? cpu) =>
        WorkerReady(logger, pid, slot, generation, (long)startup.TotalMilliseconds, process is { } p ? (long)p.TotalMilliseconds : -1, cpu is { } c ? (long)c.TotalMilliseconds : -1);

    [LoggerMessage(EventId = 13, Message =
        "Worker {Pid} (slot {Slot}, generation {Generation}) exited: {Reason}, {Status}, after {Requests} request(s).",
        EventName = "WorkerExited")]
    public static partial void WorkerExited(ILogger logger, LogLevel level, int pid, int slot, int generation, string reason, string status, long requests);

    [LoggerMessage(14, LogLevel.Warning,
        "Slot {Slot}: {Failures} worker(s) in a row failed to start; next attempt in {DelayMilliseconds} ms.",
        EventName = "WorkerRespawnDelayed")]
    public static partial void WorkerRespawnDelayed(ILogger logger, int slot, int failures, long delayMilliseconds);

    [LoggerMessage(15, LogLevel.Warning,
        "Killing worker {Pid} (slot {Slot}, generation {Generation}): {Reason}.",
        EventName = "WorkerKilled")]
    public static partial void WorkerKilled(ILogger logger, int pid, int slot, int generation, string reason);

    [LoggerMessage(16, LogLevel.Information,
        "{Signal} received: {Action}.",
        EventName = "SignalReceived")]
    public static partial void SignalReceived(ILogger logger, string signal, string action);

    [LoggerMessage(17, LogLevel.Error,
        "Could not start a worker in slot {Slot}.",
        EventName = "WorkerSpawnFailed")]
    public static partial void WorkerSpawnFailed(ILogger logger, int slot, Exception exception);

    [LoggerMessage(18, LogLevel.Error,
        "Workers = {Workers}, but Kestrel bound no endpoint in the supervisor, so there is nothing to hand to workers. Give Kestrel an IP endpoint or a Unix socket (--urls, Kestrel:Endpoints, Listen*) or set Workers to 0.",
        EventName = "NoEndpoints")]
    public static partial void NoEndpoints(ILogger logger, int workers);

    [LoggerMessage(19, LogLevel.Error,
        "The worker supervisor failed to handle an event; it carries on.",
        EventName = "SupervisorEventFailed")]
    public static partial void SupervisorEventFailed(ILogger logger, Exception exception);

    [LoggerMessage(20, LogLevel.Debug,
        "Worker {Pid}: warm-up request GET {Path} answered {StatusCode} in {Milliseconds} ms.",
        EventName = "WorkerWarmedUp")]
    public static partial void WorkerWarmedUp(ILogger logger, int pid, string path, int statusCode, long milliseconds);

    [LoggerMessage(21, LogLevel.Warning,
        "Worker {Pid}: warm-up request GET {Path} failed ({Error}); accepting anyway.",
        EventName = "WorkerWarmupFailed")]
    public static partial void WorkerWarmupFailed(ILogger logger, int pid, string path, string error);

    [LoggerMessage(22, LogLevel.Information,
        "Worker {Pid} stops accepting ({Reason}) after {Requests} request(s); {Connections} connection(s) still open get Connection: close.",
        EventName = "WorkerDraining")]
    public static partial void WorkerDraining(ILogger logger, int pid, string reason, long requests, long connections);

    [LoggerMessage(23, LogLevel.Warning,
        "Worker {Pid}: the supervisor is gone (its control socket closed); stopping.",
        EventName = "SupervisorLost")]
    public static partial void SupervisorLost(ILogger logger, int pid);

    // 24-39: the supervisor's policy.
    [LoggerMessage(24, LogLevel.Warning,
        "Worker {Pid} (slot {Slot}) is past its request budget or another limit, but {Draining} earlier worker(s) of its slot are still draining; it keeps serving until one exits.",
        EventName = "RecycleDeferred")]
    public static partial void RecycleDeferred(ILogger logger, int pid, int slot, int draining);

    [LoggerMessage(25, LogLevel.Warning,
        "The supervisor did not run for {PausedMilliseconds} ms (stopped, or starved of CPU); worker heartbeats and timeouts are counted from now.",
        EventName = "SupervisorPaused")]
    public static partial void SupervisorPaused(ILogger logger, long pausedMilliseconds);

    [LoggerMessage(26, LogLevel.Information,
        "SIGHUP: configuration re-read; {Changes}.",
        EventName = "ConfigurationReloaded")]
    public static partial void ConfigurationReloaded(ILogger logger, string changes);

    [LoggerMessage(27, LogLevel.Warning,
        "SIGHUP: {Option} changed from {Old} to {New} in configuration; it takes effect only in a new supervisor (SIGUSR2, or a restart).",
        EventName = "ReloadNeedsRestart")]
    public static partial void ReloadNeedsRestart(ILogger logger, string option, string old, string @new);

    [LoggerMessage(28, LogLevel.Error,
        "SIGHUP ignored: the re-read configuration is invalid, so every worker keeps running as it is. {Errors}",
        EventName = "ReloadRejected")]
    public static partial void ReloadRejected(ILogger logger, string errors);

    [LoggerMessage(30, LogLevel.Information,
        "Supervisor {Pid} starts {Workers} worker(s) with {Strategy}; signal this pid: SIGHUP reloads, SIGTTIN/SIGTTOU scale, SIGTERM stops.",
        EventName = "SupervisorStarted")]
    public static partial void SupervisorStarted(ILogger logger, int pid, int workers, AcceptStrategy strategy);

    [LoggerMessage(29, LogLevel.Information,
        "The supervisor (pid {Pid}) stops accepting: its listening sockets are closed while {Workers} worker(s) drain.",
        EventName = "SupervisorStopping")]
    public static partial void SupervisorStopping(ILogger logger, int pid, int workers);

    [LoggerMessage(31, LogLevel.Debug,
        "Told the service manager: {Message}",
        EventName = "ServiceManagerNotified")]
    public static partial void ServiceManagerNotified(ILogger logger, string message);

    [LoggerMessage(32, LogLevel.Warning,
        "NOTIFY_SOCKET {Socket} cannot be notified: {Reason}. The supervisor goes on; a Type=notify unit will not see it ready.",
        EventName = "ServiceManagerUnreachable")]
    public static partial void ServiceManagerUnreachable(ILogger logger, string socket, string reason);

    [LoggerMessage(33, LogLevel.Warning,
        "The descriptor limit (RLIMIT_NOFILE {Limit}) is too low for this group: the supervisor has {Open} descriptors open and needs about {Needed} with {Slots} worker slot(s) ({PerSlot} each while a worker is replaced), and each worker starts with about as many as the supervisor has plus one per connection. Workers that run out fail to start or refuse connections; {Advice}.",
        EventName = "DescriptorLimitLow")]
    public static partial void DescriptorLimitLow(ILogger logger, string limit, int open, ulong needed, int slots, int perSlot, string advice);

    // Event ids 50-59: listeners, hosting and options.
    [LoggerMessage(50, LogLevel.Error,
        "Acceptor {Acceptor} on {EndPoint} failed unexpectedly. Backing off {BackoffMilliseconds} ms and retrying; further failures are counted, not logged, until it accepts again.",
        EventName = "AcceptorFailed")]
    public static partial void AcceptorFailed(ILogger logger, int acceptor, EndPoint endPoint, int backoffMilliseconds, Exception exception);

    [LoggerMessage(51, LogLevel.Critical,
        "Refusing to bind {EndPoint}: with Workers = {Workers} only IP endpoints and Unix sockets are handed to worker processes, and the supervisor serves nothing itself. Listen on one of those instead, or set Workers = 0.",
        EventName = "EndpointRefused")]
    public static partial void EndpointRefused(ILogger logger, string endPoint, int workers);

    [LoggerMessage(52, LogLevel.Warning,
        "DOTNET_WATCH=1: running as one process, not a supervisor with {Workers} worker(s). dotnet watch hot-reloads the process it started, which in worker mode serves nothing, while the workers would keep the old code.",
        EventName = "WatchRunsSingleProcess")]
    public static partial void WatchRunsSingleProcess(ILogger logger, int workers);

    [LoggerMessage(53, LogLevel.Warning,
        "The {Section} configuration changed; in worker mode Kestrel's endpoints are fixed at start-up, so the change needs a restart of the supervisor (every endpoint keeps serving as it was).",
        EventName = "KestrelConfigurationChanged")]
    public static partial void KestrelConfigurationChanged(ILogger logger, string section);

    // Event ids 54-57: the workers' runtime profile.
    [LoggerMessage(54, LogLevel.Information,
        "Workers start with the {Profile} runtime profile: {Applied}; left to the user's own setting: {Kept}.",
        EventName = "WorkerRuntimeProfile")]
    public static partial void WorkerRuntimeProfileApplied(ILogger logger, WorkerRuntimeProfile profile, string applied, string kept);

    [LoggerMessage(58, LogLevel.Information,
        "Thread pool spin limit (UnfairSemaphoreSpinLimit): {Value}, from {Source}.",
        EventName = "ThreadPoolSpinLimit")]
    public static partial void ThreadPoolSpinLimit(ILogger logger, string value, string source);

    [LoggerMessage(59, LogLevel.Debug,
        "Worker mode: console output is written one line per write(2), so the lines of the supervisor and its workers, which share it, do not interleave.",
        EventName = "SharedConsole")]
    public static partial void SharedConsole(ILogger logger);

    // Event ids 55-57: the adaptive pool (MaxWorkers, MinSpareWorkers, MaxSpareWorkers).
    [LoggerMessage(55, LogLevel.Information,
        "Adaptive pool grows {From} -> {To} worker(s), reason {Reason}: the accepting workers are {Spare} spare (the share of the last 2 s each had no request in flight, summed), below MinSpareWorkers = {MinSpare}.",
        EventName = "PoolGrown")]
    public static partial void PoolGrown(ILogger logger, int from, int to, string reason, double spare, int minSpare);

    [LoggerMessage(56, LogLevel.Information,
        "Adaptive pool shrinks {From} -> {To} worker(s), reason {Reason}: the accepting workers are {Spare} spare (MinSpareWorkers = {MinSpare}, MaxSpareWorkers = {MaxSpare}); draining the most idle, worker {Pid} (slot {Slot}, {Idle} of the last 2 s idle).",
        EventName = "PoolShrunk")]
    public static partial void PoolShrunk(ILogger logger, int from, int to, string reason, double spare, int minSpare, int maxSpare, int pid, int slot, double idle);

    [LoggerMessage(57, LogLevel.Warning,
        "Adaptive pool at MaxWorkers = {MaxWorkers}: the accepting workers are {Spare} spare, below MinSpareWorkers = {MinSpare}, and it cannot grow; raise MaxWorkers if this lasts.",
        EventName = "PoolAtMaximum")]
    public static partial void PoolAtMaximum(ILogger logger, int maxWorkers, double spare, int minSpare);

    // Event ids 40-49: the worker side (draining, warm-up, counts, signals).
    [LoggerMessage(40, LogLevel.Information,
        "Worker {Pid} closed {Connections} connection(s) with no request in the app after a drain grace of {GraceMilliseconds} ms.",
        EventName = "WorkerConnectionsCut")]
    public static partial void WorkerConnectionsCut(ILogger logger, int pid, int connections, long graceMilliseconds);

    [LoggerMessage(41, LogLevel.Error,
        "Worker {Pid}: {Activity} failed unexpectedly; {Consequence}.",
        EventName = "WorkerActivityFailed")]
    public static partial void WorkerActivityFailed(ILogger logger, int pid, string activity, string consequence, Exception exception);

    // Event ids 60-64: the status view (StatusEndpoint).
    [LoggerMessage(60, LogLevel.Information,
        "Status view of supervisor {Pid} on {Address}: GET / answers JSON, GET /?format=text a table of every worker.",
        EventName = "StatusEndpointListening")]
    public static partial void StatusEndpointListening(ILogger logger, string address, int pid);

    [LoggerMessage(61, LogLevel.Information,
        "Removed the stale status socket {Path}: nobody listened on it (left by a supervisor that was killed).",
        EventName = "StatusSocketRemoved")]
    public static partial void StatusSocketRemoved(ILogger logger, string path);

    [LoggerMessage(62, LogLevel.Debug,
        "Status request refused with {StatusCode}: {Detail}.",
        EventName = "StatusRequestRefused")]
    public static partial void StatusRequestRefused(ILogger logger, int statusCode, string detail);

    [LoggerMessage(63, LogLevel.Critical,
        "Could not listen on the status endpoint {Address}: {Error}. The supervisor does not start.",
        EventName = "StatusEndpointFailed")]
    public static partial void StatusEndpointFailed(ILogger logger, string address, string error);

    [LoggerMessage(67, LogLevel.Information,
        "The status endpoint {Address} is still held by supervisor {Pid}, which this one replaces (SIGUSR2): it is bound once that supervisor has exited.",
        EventName = "StatusEndpointDeferred")]
    public static partial void StatusEndpointDeferred(ILogger logger, string address, int pid);

    [LoggerMessage(68, LogLevel.Error,
        "Could not listen on the status endpoint {Address} once supervisor {Pid} had exited: {Error}. The group serves on without its status view.",
        EventName = "StatusEndpointLost")]
    public static partial void StatusEndpointLost(ILogger logger, string address, int pid, string error);

    [LoggerMessage(64, LogLevel.Warning,
        "The supervisor's loop did not answer a status request within {Milliseconds} ms; answered 503.",
        EventName = "StatusSnapshotTimedOut")]
    public static partial void StatusSnapshotTimedOut(ILogger logger, long milliseconds);

    // Event ids 65-69: footprint (what wakes an idle group).
    [LoggerMessage(65, LogLevel.Debug,
        "Supervisor timer fired {IntervalMilliseconds} ms after the previous one (planned; it sleeps until the next deadline or the pause check).",
        EventName = "SupervisorTimerFired")]
    public static partial void SupervisorTimerFired(ILogger logger, long intervalMilliseconds);

    [LoggerMessage(66, LogLevel.Debug,
        "Heartbeat from worker {Pid} (slot {Slot}) {IntervalMilliseconds} ms after its previous message: {Requests} request(s), {Connections} connection(s).",
        EventName = "HeartbeatReceived")]
    public static partial void HeartbeatReceived(ILogger logger, int pid, int slot, long intervalMilliseconds, long requests, long connections);

    // Event ids 70-74: lifetime and memory recycling.
    [LoggerMessage(70, LogLevel.Information,
        "Worker {Pid} (slot {Slot}) has {RssMegabytes} MB resident, over MaxWorkerMemoryMegabytes = {LimitMegabytes}; it is replaced (reason memory) once its successor is ready.",
        EventName = "WorkerOverMemory")]
    public static partial void WorkerOverMemory(ILogger logger, int pid, int slot, long rssMegabytes, int limitMegabytes);

    // Event ids 75-79: systemd socket activation.
    [LoggerMessage(75, LogLevel.Information,
        "{EndPoint} is the socket systemd passed (descriptor {Fd}, name '{Name}'): serving it with {Strategy} instead of binding.",
        EventName = "ActivatedSocketUsed")]
    public static partial void ActivatedSocketUsed(ILogger logger, System.Net.IPEndPoint endPoint, int fd, string name, AcceptStrategy strategy);

    [LoggerMessage(76, LogLevel.Warning,
        "LISTEN_PID is {ListenPid}, not this process ({Pid}): the passed sockets are someone else's, ignored as sd_listen_fds(3) says.",
        EventName = "SocketActivationIgnored")]
    public static partial void SocketActivationIgnored(ILogger logger, string listenPid, int pid);

    [LoggerMessage(77, LogLevel.Warning,
        "ReusePort cannot split the one socket systemd passed for {EndPoint} (descriptor {Fd}) into an SO_REUSEPORT group: every acceptor of every process waits on it, as with ThunderingHerd. Choose Serialized or ThunderingHerd to say so, or let the app bind the port itself for ReusePort.",
        EventName = "ActivatedSocketShared")]
    public static partial void ActivatedSocketShared(ILogger logger, System.Net.IPEndPoint endPoint, int fd);

    [LoggerMessage(78, LogLevel.Information,
        "{EndPoint} is a Unix socket, and Linux has no SO_REUSEPORT for those: every acceptor of every worker waits on its one socket, as with ThunderingHerd. ReusePort applies to the IP endpoints.",
        EventName = "UnixEndpointShared")]
    public static partial void UnixEndpointShared(ILogger logger, string endPoint);

    [LoggerMessage(34, LogLevel.Warning,
        "ReusePort {EndPoint}: the kernel refused the program that steers new connections to the worker slots that accept ({Error}, {Targets} socket(s)); connections are hashed over every slot's sockets, so those of a slot without a working worker wait until it has one. Linux 4.5 or later is needed, and a seccomp profile that allows SO_ATTACH_REUSEPORT_CBPF.",
        EventName = "SteeringUnavailable")]
    public static partial void SteeringUnavailable(ILogger logger, string endPoint, string error, int targets);

    [LoggerMessage(35, LogLevel.Debug,
        "ReusePort {EndPoint}: new connections go to slot(s) {Slots} ({Sockets} socket(s)).",
        EventName = "Steered")]
    public static partial void Steered(ILogger logger, string endPoint, string slots, int sockets);

    [LoggerMessage(36, LogLevel.Information,
        "SIGUSR2: started a new supervisor (pid {Pid}) from {Path} with this one's {Sockets} listening socket(s); this one serves until it says its workers do.",
        EventName = "UpgradeStarted")]
    public static partial void UpgradeStarted(ILogger logger, int pid, string path, int sockets);

    [LoggerMessage(37, LogLevel.Information,
        "The new supervisor (pid {Pid}) serves: this one ({OldPid}) drains its {Workers} worker(s) and exits.",
        EventName = "UpgradeCompleted")]
    public static partial void UpgradeCompleted(ILogger logger, int pid, int oldPid, int workers);

    [LoggerMessage(38, LogLevel.Error,
        "SIGUSR2: the new supervisor{Pid} failed: {Reason}. This supervisor goes on serving with its workers; its log above says why, and SIGUSR2 may be sent again.",
        EventName = "UpgradeFailed")]
    public static partial void UpgradeFailed(ILogger logger, string pid, string reason);

    [LoggerMessage(39, LogLevel.Information,
        "Took over from supervisor {From}: {Taken} listening socket(s) in use, {Closed} of endpoints no longer configured closed; {Workers} worker process(es) serve, and supervisor {From} was {Told}.",
        EventName = "UpgradeTookOver")]
    public static partial void UpgradeTookOver(ILogger logger, int from, int taken, int closed, int workers, string told);
}
