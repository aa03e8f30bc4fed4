namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// The event-loop connection fault tests: each holds the server to a deadline of a second or two (a close seen, an
/// orphan gone), so they run one at a time, never beside other tests that load both cores.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConnectionFaults
{
    public const string Name = "Connection faults";

    /// <summary>The event loops' two strategies, and Serialized (Kestrel's own connections) as the control.</summary>
    public static TheoryData<AcceptStrategy> Strategies => new() { AcceptStrategy.ReusePort, AcceptStrategy.ThunderingHerd, AcceptStrategy.Serialized };
}
