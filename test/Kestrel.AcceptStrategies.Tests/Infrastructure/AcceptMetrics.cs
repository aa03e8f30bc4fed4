using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>Reads the library's Meter of one host (matched by its IMeterFactory scope), as dotnet-counters would.</summary>
internal sealed class AcceptMetrics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Instrument, string Key), long> _counts = new();

    // Completed (and replaced) at every measurement, so a waiter re-checks its condition only when something changed.
    private TaskCompletionSource _measured = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public AcceptMetrics(IServiceProvider services)
    {
        var factory = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == AcceptStrategyMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string acceptor = "", endpoint = "", strategy = "", error = "";
            foreach (var tag in tags)
            {
                switch (tag.Key)
                {
                    case "acceptor": acceptor = tag.Value?.ToString() ?? ""; break;
                    case "endpoint": endpoint = tag.Value?.ToString() ?? ""; break;
                    case "strategy": strategy = tag.Value?.ToString() ?? ""; break;
                    case "error": error = tag.Value?.ToString() ?? ""; break;
                }
            }

            _counts.AddOrUpdate((instrument.Name, $"{strategy}|{endpoint}|{acceptor}|{error}"), value, (_, v) => v + value);
            Interlocked.Exchange(ref _measured, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        });
        _listener.SetMeasurementEventCallback<double>((instrument, _, _, _) =>
            _counts.AddOrUpdate((instrument.Name, ""), 1, (_, v) => v + 1));
        _listener.Start();
    }

    /// <summary>Accepted connections per "strategy|endpoint|acceptor|".</summary>
    public IReadOnlyDictionary<string, long> Accepted => Snapshot(AcceptStrategyMetrics.ConnectionsAcceptedName);

    public long TotalAccepted => Accepted.Values.Sum();

    /// <summary>Accepted connections of acceptor <paramref name="id"/>.</summary>
    public long AcceptedBy(int id) =>
        Accepted.Where(kv => kv.Key.Split('|')[2] == id.ToString(System.Globalization.CultureInfo.InvariantCulture)).Sum(kv => kv.Value);

    /// <summary>Waits until <paramref name="condition"/> holds, re-checked at every measurement, at most <paramref name="timeout"/>.</summary>
    public async Task WaitUntilAsync(Func<AcceptMetrics, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + Timestamps.Units(timeout, Stopwatch.Frequency);
        while (true)
        {
            // Taken before the check: a measurement after it completes this one.
            var measured = Volatile.Read(ref _measured).Task;
            if (condition(this))
            {
                return;
            }

            var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Not reached within {timeout}: {what}. Accepted: {string.Join(", ", Accepted)}");
            }

            try
            {
                await measured.WaitAsync(left);
            }
            catch (TimeoutException)
            {
            }
        }
    }

    public IReadOnlyDictionary<string, long> Snapshot(string instrument) =>
        _counts.Where(kv => kv.Key.Instrument == instrument).ToDictionary(kv => kv.Key.Key, kv => kv.Value);

    public void Dispose() => _listener.Dispose();
}
