using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// The library's one <see cref="Meter"/>, <c>Kestrel.AcceptStrategies</c>, created through <see cref="IMeterFactory"/>
/// so dotnet-counters, OpenTelemetry and <see cref="MeterListener"/> see it.
/// </summary>
internal sealed class AcceptStrategyMetrics
{
    public const string MeterName = "Kestrel.AcceptStrategies";
    public const string ConnectionsAcceptedName = "accept_strategies.connections.accepted";
    public const string MutexWaitName = "accept_strategies.accept_mutex.wait.duration";
    public const string AcceptErrorsName = "accept_strategies.accept.errors";
    public const string SpuriousWakeupsName = "accept_strategies.accept.spurious_wakeups";
    public const string WorkersAliveName = "accept_strategies.workers.alive";
    public const string WorkerRestartsName = "accept_strategies.workers.restarts";
    public const string WorkerRequestsName = "accept_strategies.worker.requests";
    public const string WorkerConnectionsName = "accept_strategies.worker.connections";
    public const string WorkerStartupDurationName = "accept_strategies.worker.startup.duration";
    public const string WorkerStartupCpuTimeName = "accept_strategies.worker.startup.cpu_time";
    public const string PoolResizesName = "accept_strategies.pool.resizes";

    private readonly Counter<long> _accepted;
    private readonly Histogram<double> _mutexWait;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _spurious;
    private readonly Counter<long> _restarts;
    private readonly Counter<long> _workerRequests;
    private readonly Counter<long> _workerConnections;
    private readonly Histogram<double> _startupDuration;
    private readonly Histogram<double> _startupCpuTime;
    private readonly Counter<long> _poolResizes;
    private Func<int>? _workersAlive;

    public AcceptStrategyMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _accepted = meter.CreateCounter<long>(
            ConnectionsAcceptedName, "{connection}", "Connections taken from the kernel by an acceptor.");
        _mutexWait = meter.CreateHistogram<double>(
            MutexWaitName, "s", "Time an acceptor waited for the accept mutex (Serialized only).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1, 10] });
        _errors = meter.CreateCounter<long>(
            AcceptErrorsName, "{error}", "Failed accepts, tagged with the .NET SocketError name (TooManyOpenSockets for EMFILE), another errno's name, or mutex or unexpected.");
        _spurious = meter.CreateCounter<long>(
            SpuriousWakeupsName, "{wakeup}", "Acceptors woken for a connection another acceptor took first (EAGAIN).");
        // Measured only in a supervisor: a single process or a worker reports no series at all rather than a 0.
        meter.CreateObservableUpDownCounter(
            WorkersAliveName,
            () => _workersAlive is { } alive ? [new Measurement<int>(alive())] : Array.Empty<Measurement<int>>(),
            "{worker}",
            "Worker processes running (supervisor only), starting and draining ones included.");
        _restarts = meter.CreateCounter<long>(
            WorkerRestartsName, "{worker}", "Workers replaced, by reason: recycled, reload, scaled, exited, crashed, hung, failed_to_start.");
        _workerRequests = meter.CreateCounter<long>(
            WorkerRequestsName, "{request}", "Requests served by workers, by worker slot (supervisor only, from worker heartbeats).");
        _workerConnections = meter.CreateCounter<long>(
            WorkerConnectionsName, "{connection}", "Connections accepted by workers, by worker slot (supervisor only, from worker heartbeats).");
        var startupBuckets = new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] };
        _startupDuration = meter.CreateHistogram<double>(
            WorkerStartupDurationName, "s", "Wall time from a worker's process start to ready, by worker slot (supervisor only, as the worker reports it).",
            advice: startupBuckets);
        _startupCpuTime = meter.CreateHistogram<double>(
            WorkerStartupCpuTimeName, "s", "CPU time a worker used until ready, by worker slot (supervisor only, as the worker reports it).",
            advice: startupBuckets);
        _poolResizes = meter.CreateCounter<long>(
            PoolResizesName, "{resize}", "Adaptive pool size changes (supervisor only), by direction (grow, shrink) and reason.");
    }

    public void PoolResized(string direction, string reason) =>
        _poolResizes.Add(1, new KeyValuePair<string, object?>("direction", direction), new KeyValuePair<string, object?>("reason", reason));

    public void ObserveWorkersAlive(Func<int> alive) => _workersAlive = alive;

    public void WorkerRestarted(string reason) => _restarts.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void WorkerServed(int slot, long requests, long connections)
    {
        var tag = new KeyValuePair<string, object?>("worker.slot", slot);
        if (requests > 0)
        {
            _workerRequests.Add(requests, tag);
        }

        if (connections > 0)
        {
            _workerConnections.Add(connections, tag);
        }
    }

    /// <summary>One start: <paramref name="cpu"/> is null when the worker did not report it.</summary>
    public void WorkerStartedUp(int slot, TimeSpan duration, TimeSpan? cpu)
    {
        var tag = new KeyValuePair<string, object?>("worker.slot", slot);
        _startupDuration.Record(duration.TotalSeconds, tag);
        if (cpu is { } cpuTime)
        {
            _startupCpuTime.Record(cpuTime.TotalSeconds, tag);
        }
    }

    public bool MutexWaitEnabled => _mutexWait.Enabled;

    public void ConnectionAccepted(in TagList tags) => _accepted.Add(1, tags);

    public void MutexWaited(TimeSpan wait, in TagList tags) => _mutexWait.Record(wait.TotalSeconds, tags);

    public void SpuriousWakeup(in TagList tags) => _spurious.Add(1, tags);

    public void AcceptError(string error, TagList tags)
    {
        tags.Add("error", error);
        _errors.Add(1, tags);
    }

    /// <summary>
    /// In a worker, its slot: every per-acceptor series then carries <c>worker.slot</c>, so a fleet's series can be told
    /// apart and summed per slot across generations. Null elsewhere.
    /// </summary>
    public int? WorkerSlot { get; set; }

    public TagList CreateTags(int acceptorId, AcceptStrategy strategy, string endpoint)
    {
        var tags = new TagList
        {
            { "acceptor", acceptorId },
            { "strategy", strategy.ToString() },
            { "endpoint", endpoint },
        };
        if (WorkerSlot is { } slot)
        {
            tags.Add("worker.slot", slot);
        }

        return tags;
    }
}
