using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>Reads the library's Meter of one host (matched by its IMeterFactory scope), as dotnet-counters would.</summary>
internal sealed class AcceptMetrics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Instrument, string Key), long> _counts = new();

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
        });
        _listener.SetMeasurementEventCallback<double>((instrument, _, _, _) =>
            _counts.AddOrUpdate((instrument.Name, ""), 1, (_, v) => v + 1));
        _listener.Start();
    }

    /// <summary>Accepted connections per "strategy|endpoint|acceptor|".</summary>
    public IReadOnlyDictionary<string, long> Accepted => Snapshot(AcceptStrategyMetrics.ConnectionsAcceptedName);

    public long TotalAccepted => Accepted.Values.Sum();

    public IReadOnlyDictionary<string, long> Snapshot(string instrument) =>
        _counts.Where(kv => kv.Key.Instrument == instrument).ToDictionary(kv => kv.Key.Key, kv => kv.Value);

    public void Dispose() => _listener.Dispose();
}
