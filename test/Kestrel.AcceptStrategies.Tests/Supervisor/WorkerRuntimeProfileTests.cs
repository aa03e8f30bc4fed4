using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// The runtime settings the supervisor gives its workers reach them (libc's environment, which the runtime read at
/// start), a setting the user gave in the environment or runtimeconfig.json wins, and Inherit adds nothing.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class WorkerRuntimeProfileTests
{
    private const string Spin = "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit";
    private const string SpinProperty = "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit";

    [Fact]
    public async Task Tuned_AppBuiltWithoutTheProfile_WorkersStartWithoutThreadPoolSpinning()
    {
        // An app built with AcceptStrategyRuntimeProfile=Inherit: its runtimeconfig.json says nothing of spinning.
        using var app = AppCopy.Create(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1 } });
        EditRuntimeConfig(app, properties => properties.Remove(SpinProperty));

        await using var group = await WorkerGroup.StartAsync(app, 1);

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
    public void PackageProfile_AppsRuntimeConfigTurnsSpinningOff()
    {
        // BenchmarkApp imports the package's buildTransitive targets, as a PackageReference does, and opts in with
        // <AcceptStrategyRuntimeProfile>Tuned</…>; the marker tells the library the value came from that profile.
        var path = Path.ChangeExtension(ChildProcess.BenchmarkAppPath, ".runtimeconfig.json");
        var properties = JsonNode.Parse(File.ReadAllText(path))!["runtimeOptions"]!["configProperties"]!.AsObject();
        Assert.Equal(0, properties[SpinProperty]?.GetValue<int>());
        Assert.Equal("Tuned", properties["Kestrel.AcceptStrategies.RuntimeProfile"]?.GetValue<string>());
    }

    [Fact]
    public async Task Tuned_AppBuiltWithTheProfile_WorkersReadItFromRuntimeConfig()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort);

        Assert.Equal($"{Spin} unset", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.StartsWith(SpinProperty + " (runtimeconfig.json", profile["Kept"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tuned_RuntimeConfigSetsTheProperty_NothingOverridesIt()
    {
        using var app = AppCopy.Create(new JsonObject { ["WorkerProcesses"] = new JsonObject { ["Workers"] = 1 } });
        EditRuntimeConfig(app, properties => properties[SpinProperty] = 20);

        await using var group = await WorkerGroup.StartAsync(app, 1);

        // Set in the environment, the variable would override runtimeconfig.json; it is not set.
        Assert.Equal($"{Spin} unset", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.StartsWith(SpinProperty + " (runtimeconfig.json", profile["Kept"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inherit_WorkersGetNothingAdded()
    {
        await using var group = await WorkerGroup.StartAsync(1, AcceptStrategy.ReusePort, "--WorkerProcesses:RuntimeProfile=Inherit");

        Assert.Equal($"{Spin} unset", await NativeEnvAsync(group, Spin));
        var profile = Assert.Single(group.EventsOf(LogEvents.WorkerRuntimeProfile));
        Assert.Equal("Inherit", profile["Profile"]);
        Assert.Equal("nothing added", profile["Applied"]);
    }

    private static Task<string> NativeEnvAsync(WorkerGroup group, string name) =>
        Load.GetAsync(new Uri(group.Address, "/native-env?name=" + name));

    private static void EditRuntimeConfig(AppCopy app, Action<JsonObject> edit)
    {
        var path = Path.ChangeExtension(app.AppPath, ".runtimeconfig.json");
        var runtimeConfig = JsonNode.Parse(File.ReadAllText(path))!;
        edit(runtimeConfig["runtimeOptions"]!["configProperties"]!.AsObject());
        File.WriteAllText(path, runtimeConfig.ToJsonString());
    }
}
