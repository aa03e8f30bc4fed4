using System.Globalization;

namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>
/// What a supervisor tells a worker through its environment, as the supervisor writes it; the worker reads it back
/// into its identity once, at <c>UseAcceptStrategy()</c>.
/// </summary>
internal static class WorkerEnvironment
{
    public const string WorkerVariable = "KESTREL_ACCEPT_STRATEGIES_WORKER";

    /// <summary>
    /// Each endpoint's listening sockets: <c>ENDPOINT=FD[,FD...]</c>, <c>;</c>-separated, in binding order. An endpoint is
    /// written as Kestrel names it (<c>127.0.0.1:5000</c>, a Unix socket's path) with <c>%</c>, <c>;</c>, <c>=</c> and
    /// <c>,</c> percent-encoded (<see cref="EscapeEndpoint"/>): a path may hold them, an IP endpoint never does.
    /// </summary>
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
        string.Join(';', endpoints.Select(e => EscapeEndpoint(e.Endpoint) + "=" + string.Join(',', e.Fds.Select(f => f.ToString(CultureInfo.InvariantCulture)))));

    /// <summary>An endpoint's name with the format's separators (and the escape character) percent-encoded.</summary>
    public static string EscapeEndpoint(string endpoint) =>
        endpoint.Replace("%", "%25", StringComparison.Ordinal).Replace(";", "%3B", StringComparison.Ordinal)
            .Replace("=", "%3D", StringComparison.Ordinal).Replace(",", "%2C", StringComparison.Ordinal);

    /// <summary>The inverse of <see cref="EscapeEndpoint"/>.</summary>
    public static string UnescapeEndpoint(string escaped) =>
        escaped.Replace("%2C", ",", StringComparison.Ordinal).Replace("%3D", "=", StringComparison.Ordinal)
            .Replace("%3B", ";", StringComparison.Ordinal).Replace("%25", "%", StringComparison.Ordinal);
}
