using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// The runtime settings the supervisor gives its workers reach them (libc's environment, which the runtime read at
/// start), a setting the user gave in the environment or runtimeconfig.json wins, and Inherit adds nothing.
/// </summary>
[Collection(WorkerProcesses.Name)]
public sealed class WorkerRuntimeProfileTests
{
    private const string Spin = "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit";
    private const string SpinProperty = "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit";

    [Fact]
    public async Task Tuned_ByDefault_WorkersStartWithoutThreadPoolSpinning()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort);

        Assert.Equal($"{Spin}=0", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal("Tuned", profile["Profile"]);
        Assert.Equal($"{Spin}=0", profile["Applied"]);
        Assert.Equal("none", profile["Kept"]);
    }

    [Fact]
    public async Task Tuned_UserSetTheVariable_UsersValueReachesWorkers()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort, environment: new Dictionary<string, string> { [Spin] = "5" });

        Assert.Equal($"{Spin}=5", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal("nothing added", profile["Applied"]);
        Assert.Equal(Spin, profile["Kept"]);
    }

    [Fact]
    public async Task Tuned_RuntimeConfigSetsTheProperty_NothingOverridesIt()
    {
        using var app = AppCopy.Create(new JsonObject { ["AcceptStrategy"] = new JsonObject { ["Workers"] = 1 } });
        var runtimeConfigPath = Path.ChangeExtension(app.AppPath, ".runtimeconfig.json");
        var runtimeConfig = JsonNode.Parse(File.ReadAllText(runtimeConfigPath))!;
        runtimeConfig["runtimeOptions"]!["configProperties"]![SpinProperty] = 20;
        File.WriteAllText(runtimeConfigPath, runtimeConfig.ToJsonString());

        await using var group = await WorkerGroup.StartAsync(app, 1);

        // Set in the environment, the variable would override runtimeconfig.json; it is not set.
        Assert.Equal($"{Spin} unset", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal(SpinProperty, profile["Kept"]);
    }

    [Fact]
    public async Task Inherit_WorkersGetNothingAdded()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort, "--AcceptStrategy:WorkerRuntimeProfile=Inherit");

        Assert.Equal($"{Spin} unset", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal("Inherit", profile["Profile"]);
        Assert.Equal("nothing added", profile["Applied"]);
    }

    private static Task<string> NativeEnvAsync(WorkerGroup group, string name) =>
        Load.GetAsync(new Uri(group.Address, "/native-env?name=" + name));
}
