using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// Tests that start supervisors and worker processes run one at a time: each uses both cores. The lock extends that
/// to the other test project of the checkout (Kestrel.AcceptStrategies.Perf.Tests), which links this file.
/// </summary>
[CollectionDefinition(Name)]
public sealed class SharedWorkerProcesses : ICollectionFixture<WorkerProcessesLock>
{
    public const string Name = "Worker processes";
}
