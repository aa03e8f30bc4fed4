using System.Globalization;

namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>
/// What a supervisor tells a worker through its environment, as the supervisor writes it; the worker reads it back
/// into its identity once, at <c>UseAcceptStrategy()</c>.
/// </summary>
internal static class WorkerEnvironment
{
    public const string WorkerVariable = "KESTREL_ACCEPT_STRATEGIES_WORKER";

    /// <summary>Each endpoint's listening sockets: <c>ENDPOINT=FD[,FD...]</c>, <c>;</c>-separated, in binding order.</summary>
    public const string ListenFdsVariable = "KESTREL_ACCEPT_STRATEGIES_LISTEN_FDS";

    /// <summary>
    /// Each endpoint's accept lock (Serialized only): <c>ENDPOINT=FD</c>, <c>;</c>-separated, in the order of
    /// <see cref="ListenFdsVariable"/>, so the n-th binding of an endpoint gets the n-th lock named for it.
    /// </summary>
    public const string LockFdsVariable = "KESTREL_ACCEPT_STRATEGIES_LOCK_FDS";

    /// <summary>
    /// The worker variable. <c>lockfd</c> is the one lock workers of earlier builds know (they read no
    /// <see cref="LockFdsVariable"/>); <c>acceptors</c> is the supervisor's <c>Acceptors</c>, which its sockets were
    /// made for (workers of earlier builds ignore it).
    /// </summary>
    public static string Format(int slot, int generation, long budget, int controlFd, AcceptStrategy strategy, int acceptors, int? lockFd) =>
        string.Create(CultureInfo.InvariantCulture, $"slot={slot};generation={generation};budget={budget};control={controlFd};strategy={strategy};acceptors={acceptors};lockfd={lockFd}");

    public static string FormatFds(IEnumerable<(string Endpoint, int[] Fds)> endpoints) =>
        string.Join(';', endpoints.Select(e => e.Endpoint + "=" + string.Join(',', e.Fds.Select(f => f.ToString(CultureInfo.InvariantCulture)))));
}
