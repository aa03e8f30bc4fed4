using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace BenchmarkApp;

/// <summary>
/// --MeterSnapshotPath=DIR: every process of the app (supervisor and workers alike) listens to the library's Meter and
/// rewrites DIR/PID.tsv within 100 ms of a change of its counters (never while idle: a benchmark runs dozens of idle
/// servers beside the one under load), so the sweep (perf/Sweep) reads connections per acceptor and per worker from
/// the Meter itself rather than guessing them.
/// </summary>
internal sealed class MeterSnapshotWriter(IConfiguration configuration, WorkerProcessInfo process) : BackgroundService
{
    private const string MeterName = "Kestrel.AcceptStrategies";
    private static readonly string[] s_instruments =
    [
        "accept_strategies.connections.accepted",
        "accept_strategies.worker.connections",
        "accept_strategies.worker.requests",
        "accept_strategies.worker.startup.duration",
        "accept_strategies.worker.startup.cpu_time",
    ];

    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _changed = new(0, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var directory = configuration["MeterSnapshotPath"]!;
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"{Environment.ProcessId}.tsv");

        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == MeterName && s_instruments.Contains(instrument.Name))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        // Histograms (worker start-up times) are written as their count of measurements.
        listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) => Add(instrument, 1, tags));
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        listener.Start();

        await WriteAsync(path);
        try
        {
            while (true)
            {
                await _changed.WaitAsync(stoppingToken);
                await Task.Delay(100, stoppingToken);
                await WriteAsync(path);
            }
        }
        catch (OperationCanceledException)
        {
        }

        await WriteAsync(path);
    }

    private void Add(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = new StringBuilder(instrument.Name);
        foreach (var tag in tags)
        {
            if (tag.Key is "acceptor" or "worker.slot")
            {
                key.Append('\t').Append(tag.Key).Append('=').Append(Convert.ToString(tag.Value, CultureInfo.InvariantCulture));
            }
        }

        _counters.AddOrUpdate(key.ToString(), value, (_, old) => old + value);
        if (_changed.CurrentCount == 0)
        {
            try
            {
                _changed.Release();
            }
            catch (SemaphoreFullException)
            {
            }
        }
    }

    private async Task WriteAsync(string path)
    {
        // Header: role and slot, so a recycled worker's successor adds up under the same slot.
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"# {process.Role}\t{process.Slot}\n");
        foreach (var (key, value) in _counters)
        {
            text.Append(CultureInfo.InvariantCulture, $"{key}\t{value}\n");
        }

        var temporary = path + ".tmp";
        await File.WriteAllTextAsync(temporary, text.ToString());
        File.Move(temporary, path, overwrite: true);
    }
}
