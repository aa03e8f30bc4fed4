using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>What a supervisor tells a worker stays in that worker: nothing it starts inherits it.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerEnvironmentTests
{
    [Theory]
    [InlineData("KESTREL_ACCEPT_STRATEGIES_WORKER", AcceptStrategy.ThunderingHerd)]
    [InlineData("KESTREL_ACCEPT_STRATEGIES_LISTEN_FDS", AcceptStrategy.ThunderingHerd)]
    [InlineData("KESTREL_ACCEPT_STRATEGIES_LOCK_FDS", AcceptStrategy.Serialized)]
    public async Task WorkerVariables_NativeEnvironment_Removed(string name, AcceptStrategy strategy)
    {
        await using var group = await WorkerGroup.StartAsync(1, strategy);

        // Still a worker answering, and libc's environment (what system(3) children get) no longer has the variable.
        Assert.StartsWith("Worker ", await Load.GetAsync(new Uri(group.Address, "/whoami")), StringComparison.Ordinal);
        Assert.Equal($"{name} unset", await Load.GetAsync(new Uri(group.Address, $"/native-env?name={name}")));
        Assert.Equal("PATH=" + Environment.GetEnvironmentVariable("PATH"), await Load.GetAsync(new Uri(group.Address, "/native-env?name=PATH")));
    }
}
