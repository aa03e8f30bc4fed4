namespace Kestrel.AcceptStrategies;

/// <summary>
/// Transport options: how this process's acceptors take connections from the kernel. Bound from the
/// <c>AcceptStrategy</c> configuration section by <c>UseAcceptStrategy()</c>; code configuration runs after the binding
/// and wins. Worker processes have their own options, <see cref="WorkerProcesses.WorkerProcessOptions"/>.
/// </summary>
/// <remarks>
/// Socket-level settings that Kestrel already has (<c>Backlog</c>, <c>NoDelay</c>, buffer sizes, <c>IOQueueCount</c>,
/// <c>WaitForDataBeforeAllocatingBuffer</c>, <c>UnsafePreferInlineScheduling</c>) are read from Kestrel's
/// <see cref="Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions"/>, so values set with
/// <c>UseSockets(...)</c> keep their meaning.
/// </remarks>
public sealed class AcceptStrategyOptions
{
    /// <summary>
    /// The name of the configuration section the options are bound from.
    /// </summary>
    public const string SectionName = "AcceptStrategy";

    /// <summary>
    /// How acceptors take connections from the kernel.
    /// </summary>
    /// <remarks>Defaults to <see cref="AcceptStrategy.ReusePort"/>, measured fastest for one connection per request on Linux (see perf/README.md).</remarks>
    public AcceptStrategy Strategy { get; set; } = AcceptStrategy.ReusePort;

    /// <summary>
    /// The number of acceptor threads per listening endpoint in this process.
    /// </summary>
    /// <remarks>Defaults to <see cref="Environment.ProcessorCount"/>.</remarks>
    public int Acceptors { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Whether the kernel holds a new connection back from <c>accept(2)</c> until its first bytes arrive
    /// (<c>TCP_DEFER_ACCEPT</c>, as Starlet and nginx's <c>deferred</c> do), so an acceptor never wakes for a
    /// connection that has nothing to read yet.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="true"/>. HTTP and TLS clients always speak first; turn it off only for protocols
    /// in which the server speaks first.
    /// </remarks>
    public bool DeferAccept { get; set; } = true;

    /// <summary>Problems found while binding configuration, reported by validation together with the rest.</summary>
    internal ConfigurationProblems ConfigurationProblems { get; } = new();
}
