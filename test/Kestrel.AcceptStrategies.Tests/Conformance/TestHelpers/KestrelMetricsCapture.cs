using System.Diagnostics.Metrics;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>One value recorded on one of Kestrel's instruments, with its tags.</summary>
public sealed record RecordedMeasurement(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags)
{
    /// <summary>The <c>error.type</c> tag Kestrel puts on a connection that ended badly; null for a clean end.</summary>
    public string? ErrorType => Tags.TryGetValue("error.type", out var value) ? value as string : null;
}

/// <summary>
/// An <see cref="IMeterFactory"/> for one test's host (<see cref="ServerSetup.Meters"/>) that records what Kestrel's
/// meter measures on that host and on no other: the listener only enables instruments of meters this factory made.
/// </summary>
public sealed class KestrelMetricsCapture : IMeterFactory
{
    public const string MeterName = "Microsoft.AspNetCore.Server.Kestrel";

    public const string ActiveConnections = "kestrel.active_connections";

    public const string RejectedConnections = "kestrel.rejected_connections";

    public const string ConnectionDuration = "kestrel.connection.duration";

    private readonly Lock _gate = new();
    private readonly List<Meter> _meters = [];
    private readonly List<RecordedMeasurement> _recorded = [];
    private readonly List<(Func<KestrelMetricsCapture, bool> Condition, TaskCompletionSource Met)> _waiters = [];
    private readonly MeterListener _listener = new();

    public KestrelMetricsCapture()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, this) && instrument.Meter.Name == MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Scope = this;
        var meter = new Meter(options);
        lock (_gate)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    /// <summary>The values recorded on <paramref name="instrument"/> so far, in order.</summary>
    public IReadOnlyList<RecordedMeasurement> On(string instrument)
    {
        lock (_gate)
        {
            return _recorded.Where(m => m.Instrument == instrument).ToArray();
        }
    }

    /// <summary>Completes once <paramref name="condition"/> holds for what was recorded; bound it with OrTimeout.</summary>
    public Task When(Func<KestrelMetricsCapture, bool> condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var met = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _waiters.Add((condition, met));
        }

        CheckWaiters();
        return met.Task;
    }

    /// <summary>How many values <paramref name="instrument"/> recorded that equal <paramref name="value"/>.</summary>
    public int Count(string instrument, double value) => On(instrument).Count(m => m.Value == value);

    public void Dispose()
    {
        _listener.Dispose();
        lock (_gate)
        {
            _meters.ForEach(m => m.Dispose());
            _meters.Clear();
        }
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>(tags.Length);
        foreach (var (key, tagValue) in tags)
        {
            copy[key] = tagValue;
        }

        lock (_gate)
        {
            _recorded.Add(new RecordedMeasurement(instrument.Name, value, copy));
        }

        CheckWaiters();
    }

    private void CheckWaiters()
    {
        (Func<KestrelMetricsCapture, bool> Condition, TaskCompletionSource Met)[] waiting;
        lock (_gate)
        {
            waiting = [.. _waiters];
        }

        foreach (var waiter in waiting.Where(w => w.Condition(this)))
        {
            lock (_gate)
            {
                _waiters.Remove(waiter);
            }

            waiter.Met.TrySetResult();
        }
    }
}
