namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// The event-loop connection fault tests: each holds the server to a deadline of a second or two (a close seen, an
/// orphan gone), so they run one at a time, never beside other tests that load both cores.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConnectionFaults
{
    public const string Name = "Connection faults";
}
