namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>Tests that start supervisors and worker processes run one at a time: each uses both cores.</summary>
[CollectionDefinition(Name)]
public sealed class WorkerProcesses
{
    public const string Name = "Worker processes";
}
