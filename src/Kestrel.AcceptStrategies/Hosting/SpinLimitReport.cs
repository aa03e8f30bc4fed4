namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// The thread pool's spin limit (<c>UnfairSemaphoreSpinLimit</c>) this process runs with and who set it, as the
/// runtime reads it: the environment first, then runtimeconfig.json, else the runtime's default.
/// </summary>
internal static class SpinLimitReport
{
    public const string Property = "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit";


    public static (string Value, string Source) Describe() => Describe(Environment.GetEnvironmentVariable, AppContext.GetData);

    internal static (string Value, string Source) Describe(Func<string, string?> environment, Func<string, object?> runtimeConfig)
    {
        foreach (var prefix in (string[])["DOTNET_", "COMPlus_"])
        {
            if (environment(prefix + "ThreadPool_UnfairSemaphoreSpinLimit") is { } variable)
            {
                // The runtime reads this one as hexadecimal, as it reads every DOTNET_ setting of a number.
                return ($"0x{variable.Trim().Replace("0x", "", StringComparison.OrdinalIgnoreCase)}", $"the environment variable {prefix}ThreadPool_UnfairSemaphoreSpinLimit");
            }
        }

        if (runtimeConfig(Property) is { } configured)
        {
            return (Convert.ToString(configured, System.Globalization.CultureInfo.InvariantCulture) ?? "",
                runtimeConfig(Supervisor.Processes.WorkerRuntimeSettings.ProfileMarker) is "Tuned"
                    ? "runtimeconfig.json, written by the package's runtime profile (<AcceptStrategyRuntimeProfile>Tuned</AcceptStrategyRuntimeProfile> in the project)"
                    : "runtimeconfig.json, the app's own setting");
        }

        return ("the runtime's default", "no setting; <AcceptStrategyRuntimeProfile>Tuned</AcceptStrategyRuntimeProfile> in the project sets 0 (docs/runtime-profile.md)");
    }
}
