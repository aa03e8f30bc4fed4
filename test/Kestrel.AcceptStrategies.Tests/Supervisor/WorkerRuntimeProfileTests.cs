using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// The settings the supervisor gives its workers reach them (libc's environment and the runtime's own decision), a
/// setting the user gave wins, and Inherit leaves the workers as the supervisor is.
/// </summary>
[Collection(WorkerProcesses.Name)]
public sealed class WorkerRuntimeProfileTests
{
    [Fact]
    public async Task Tuned_ByDefault_WorkersRunWorkstationGcWithoutSpinning()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort);

        Assert.Equal("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0", await NativeEnvAsync(group, "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"));
        Assert.Equal("DOTNET_gcServer=0", await NativeEnvAsync(group, "DOTNET_gcServer"));

        // BenchmarkApp's runtimeconfig.json says System.GC.Server=true (the Web SDK's default); the worker runs workstation GC.
        Assert.Equal("workstation", await Load.GetAsync(new Uri(group.Address, "/gc")));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal("Tuned", profile["Profile"]);
        Assert.Contains("DOTNET_gcServer=0", profile["Applied"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tuned_UserSetGcServerInEnvironment_UsersValueWinsOthersStillApplied()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort, environment: new Dictionary<string, string> { ["DOTNET_gcServer"] = "1" });

        Assert.Equal("DOTNET_gcServer=1", await NativeEnvAsync(group, "DOTNET_gcServer"));
        Assert.Equal("server", await Load.GetAsync(new Uri(group.Address, "/gc")));
        Assert.Equal("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0", await NativeEnvAsync(group, "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal("DOTNET_gcServer", profile["Kept"]);
    }

    [Fact]
    public async Task Inherit_WorkersGetNothingAdded()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort, "--AcceptStrategy:WorkerRuntimeProfile=Inherit");

        Assert.Equal("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit unset", await NativeEnvAsync(group, "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"));
        Assert.Equal("DOTNET_gcServer unset", await NativeEnvAsync(group, "DOTNET_gcServer"));
        Assert.Equal("server", await Load.GetAsync(new Uri(group.Address, "/gc")));
        Assert.Equal("nothing added", Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile))["Applied"]);
    }

    private static Task<string> NativeEnvAsync(WorkerGroup group, string name) =>
        Load.GetAsync(new Uri(group.Address, "/native-env?name=" + name));
}
