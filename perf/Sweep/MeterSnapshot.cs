using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// The library's Meter counters as BenchmarkApp's <c>--MeterSnapshotPath</c> writes them: one file per process,
/// a header (role, slot) then "instrument[\ttag=value]*\tcount" lines.
/// </summary>
internal sealed class MeterSnapshot
{
    public const string ConnectionsAccepted = "accept_strategies.connections.accepted";
    public const string WorkerConnections = "accept_strategies.worker.connections";

    private MeterSnapshot(Dictionary<string, long> counters) => Counters = counters;

    /// <summary>Counts keyed by "role/slot/instrument/tags" across every process that wrote into the directory.</summary>
    public IReadOnlyDictionary<string, long> Counters { get; }

    public static MeterSnapshot Read(string directory)
    {
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!Directory.Exists(directory))
        {
            return new MeterSnapshot(counters);
        }

        foreach (var file in Directory.EnumerateFiles(directory, "*.tsv"))
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(file);
            }
            catch (FileNotFoundException)
            {
                continue;
            }

            if (lines.Length == 0 || !lines[0].StartsWith("# ", StringComparison.Ordinal))
            {
                continue;
            }

            var header = lines[0][2..].Split('\t');
            var role = header[0];
            var slot = header[1];
            foreach (var line in lines.Skip(1))
            {
                var cut = line.LastIndexOf('\t');
                if (cut < 0)
                {
                    continue;
                }

                // A recycled worker's successor has the same slot: keys by slot, not pid, add up across generations.
                var key = $"{role}/{slot}/{line[..cut]}";
                counters[key] = counters.GetValueOrDefault(key) + long.Parse(line[(cut + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return new MeterSnapshot(counters);
    }

    /// <summary>Connections per worker slot (from the supervisor's counters), between two snapshots.</summary>
    public static IReadOnlyList<double> ConnectionsPerWorker(MeterSnapshot before, MeterSnapshot after, int workers) =>
        Enumerable.Range(0, workers)
            .Select(slot => (double)Delta(before, after, $"Supervisor/-1/{WorkerConnections}\tworker.slot={slot.ToString(CultureInfo.InvariantCulture)}"))
            .ToList();

    /// <summary>Connections per acceptor of every serving process (worker slot × acceptor), between two snapshots.</summary>
    public static IReadOnlyList<double> ConnectionsPerAcceptor(MeterSnapshot before, MeterSnapshot after, int workers, int acceptors)
    {
        var shares = new List<double>();
        var serving = workers == 0
            ? [("SingleProcess", -1)]
            : Enumerable.Range(0, workers).Select(slot => ("Worker", slot)).ToList();
        foreach (var (role, slot) in serving)
        {
            for (var acceptor = 0; acceptor < acceptors; acceptor++)
            {
                // A worker's per-acceptor series also carry its slot.
                var key = string.Create(CultureInfo.InvariantCulture, $"{role}/{slot}/{ConnectionsAccepted}\tacceptor={acceptor}");
                shares.Add(Delta(before, after, slot < 0 ? key : string.Create(CultureInfo.InvariantCulture, $"{key}\tworker.slot={slot}")));
            }
        }

        return shares;
    }

    private static long Delta(MeterSnapshot before, MeterSnapshot after, string key) =>
        Math.Max(0, after.Counters.GetValueOrDefault(key) - before.Counters.GetValueOrDefault(key));
}
