using Kestrel.AcceptStrategies.Hosting;

namespace Kestrel.AcceptStrategies.Tests.Hosting;

/// <summary>The start-up line about the thread pool's spin limit names who set it, as the runtime decides it.</summary>
public sealed class SpinLimitReportTests
{
    private const string Property = "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit";

    [Fact]
    public void Nothing_RuntimeDefault_AndHowToOptIn()
    {
        var (value, source) = SpinLimitReport.Describe(_ => null, _ => null);

        Assert.Equal("the runtime's default", value);
        Assert.Contains("<AcceptStrategyRuntimeProfile>Tuned</AcceptStrategyRuntimeProfile>", source, StringComparison.Ordinal);
    }

    [Fact]
    public void PackageProfile_RuntimeConfigCreditedToThePackage()
    {
        var (value, source) = SpinLimitReport.Describe(_ => null, p => p switch
        {
            Property => 0,
            "Kestrel.AcceptStrategies.RuntimeProfile" => "Tuned",
            _ => null,
        });

        Assert.Equal("0", value);
        Assert.StartsWith("runtimeconfig.json, written by the package's runtime profile", source, StringComparison.Ordinal);
    }

    [Fact]
    public void AppsOwnRuntimeConfig_CreditedToTheApp()
    {
        var (value, source) = SpinLimitReport.Describe(_ => null, p => p == Property ? "20" : null);

        Assert.Equal(("20", "runtimeconfig.json, the app's own setting"), (value, source));
    }

    [Fact]
    public void EnvironmentVariable_WinsAndIsReadAsHexadecimal()
    {
        var (value, source) = SpinLimitReport.Describe(
            v => v == "COMPlus_ThreadPool_UnfairSemaphoreSpinLimit" ? "10" : null, p => p == Property ? 0 : null);

        Assert.Equal(("0x10", "the environment variable COMPlus_ThreadPool_UnfairSemaphoreSpinLimit"), (value, source));
    }
}
