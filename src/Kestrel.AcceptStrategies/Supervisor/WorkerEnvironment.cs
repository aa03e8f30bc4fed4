using System.Globalization;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// What a supervisor tells a worker through its environment, as the supervisor writes it; the worker reads it back
/// into its identity once, at <c>UseAcceptStrategy()</c>.
/// </summary>
internal static class WorkerEnvironment
{
    public const string WorkerVariable = "KESTREL_ACCEPT_STRATEGIES_WORKER";
    public const string ListenFdsVariable = "KESTREL_ACCEPT_STRATEGIES_LISTEN_FDS";

    public static string Format(int slot, int generation, long budget, int controlFd, AcceptStrategy strategy, int? lockFd) =>
        string.Create(CultureInfo.InvariantCulture, $"slot={slot};generation={generation};budget={budget};control={controlFd};strategy={strategy};lockfd={lockFd}");

    public static string FormatListenFds(IEnumerable<(string Endpoint, int[] Fds)> endpoints) =>
        string.Join(';', endpoints.Select(e => e.Endpoint + "=" + string.Join(',', e.Fds.Select(f => f.ToString(CultureInfo.InvariantCulture)))));
}
