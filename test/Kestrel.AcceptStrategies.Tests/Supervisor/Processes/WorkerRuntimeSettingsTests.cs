using Kestrel.AcceptStrategies.Supervisor.Processes;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Processes;

/// <summary>Which runtime settings a worker gets: the profile's, minus any the user set either way.</summary>
public sealed class WorkerRuntimeSettingsTests
{
    private static readonly RuntimeKnob[] Knobs =
    [
        new("ThreadPool_UnfairSemaphoreSpinLimit", "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", "0"),
        new("gcServer", "System.GC.Server", "0"),
    ];

    [Fact]
    public void Tuned_NothingSetByUser_EveryKnobApplied()
    {
        var (applied, kept) = WorkerRuntimeSettings.Decide(WorkerRuntimeProfile.Tuned, Knobs, ["PATH", "HOME"], _ => null);

        Assert.Equal(["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0", "DOTNET_gcServer=0"], applied.Select(a => a.Key + "=" + a.Value));
        Assert.Empty(kept);
    }

    [Theory]
    [InlineData("DOTNET_gcServer")]
    [InlineData("COMPlus_gcServer")]
    [InlineData("DOTNET_GCSERVER")]
    public void Tuned_UserSetKnobInEnvironment_KnobLeftOut(string variable)
    {
        var (applied, kept) = WorkerRuntimeSettings.Decide(WorkerRuntimeProfile.Tuned, Knobs, [variable], _ => null);

        Assert.Equal(["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"], applied.Select(a => a.Key));
        Assert.Equal(["DOTNET_gcServer"], kept);
    }

    [Fact]
    public void Tuned_RuntimeConfigSetsProperty_KnobLeftOutAndNamed()
    {
        var (applied, kept) = WorkerRuntimeSettings.Decide(
            WorkerRuntimeProfile.Tuned, Knobs, [], p => p == "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit" ? 50 : null);

        Assert.Equal(["DOTNET_gcServer"], applied.Select(a => a.Key));
        Assert.Equal(["System.Threading.ThreadPool.UnfairSemaphoreSpinLimit (runtimeconfig.json)"], kept);
    }

    [Fact]
    public void Tuned_PackageProfileSetProperty_KeptAndCreditedToThePackage()
    {
        var (_, kept) = WorkerRuntimeSettings.Decide(
            WorkerRuntimeProfile.Tuned, Knobs, [], p => p switch
            {
                "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit" => 0,
                WorkerRuntimeSettings.ProfileMarker => "Tuned",
                _ => null,
            });

        Assert.Equal(["System.Threading.ThreadPool.UnfairSemaphoreSpinLimit (runtimeconfig.json, from the package's opt-in runtime profile)"], kept);
    }

    [Fact]
    public void Inherit_NothingAppliedNothingReported()
    {
        var (applied, kept) = WorkerRuntimeSettings.Decide(WorkerRuntimeProfile.Inherit, Knobs, [], _ => null);

        Assert.Empty(applied);
        Assert.Empty(kept);
    }

    [Fact]
    public void TunedProfile_EveryKnobNamesAVariableTheRuntimeReads()
    {
        Assert.All(WorkerRuntimeSettings.Tuned, k => Assert.Matches("^DOTNET_[A-Za-z_]+$", k.Variable));
        Assert.Equal(WorkerRuntimeSettings.Tuned.Count, WorkerRuntimeSettings.Tuned.Select(k => k.EnvironmentName.ToUpperInvariant()).Distinct().Count());
    }
}
