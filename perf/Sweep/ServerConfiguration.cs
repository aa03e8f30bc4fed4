using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>One server of the sweep: Kestrel's default transport, or a strategy with its acceptors and workers.</summary>
internal sealed record ServerConfiguration(string? Strategy, int Acceptors, int Workers)
{
    public static ServerConfiguration Baseline { get; } = new(null, 0, 0);

    public bool IsBaseline => Strategy is null;

    public string Label => IsBaseline
        ? "baseline"
        : string.Create(CultureInfo.InvariantCulture, $"{Strategy} A{Acceptors} W{Workers}");

    /// <summary>The series a chart draws this point in (workers are the x axis).</summary>
    public string Series => IsBaseline ? "baseline" : string.Create(CultureInfo.InvariantCulture, $"{Strategy} A{Acceptors}");

    /// <summary>BenchmarkApp's command-line arguments for this configuration.</summary>
    public IReadOnlyList<string> Arguments => IsBaseline
        ? ["--Baseline=true"]
        :
        [
            $"--AcceptStrategy:Strategy={Strategy}",
            string.Create(CultureInfo.InvariantCulture, $"--AcceptStrategy:Acceptors={Acceptors}"),
            string.Create(CultureInfo.InvariantCulture, $"--AcceptStrategy:Workers={Workers}"),
        ];

    /// <summary>Processes that serve requests (and so need warming): the workers, or the one process.</summary>
    public int ServingProcesses => Math.Max(1, Workers);
}
