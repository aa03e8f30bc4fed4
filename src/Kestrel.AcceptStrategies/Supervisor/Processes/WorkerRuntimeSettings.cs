using Kestrel.AcceptStrategies.WorkerProcesses;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>
/// The runtime settings a supervisor adds to its workers' environment under <see cref="WorkerRuntimeProfile.Tuned"/>:
/// the ones measured to pay when many .NET processes share the machine's cores (perf/README.md, "Runtime profile").
/// </summary>
/// <remarks>
/// A setting the user gave wins: a knob is left out when the supervisor's environment sets it under either prefix
/// (the runtime reads both) or the app's runtimeconfig.json sets its property (the environment would override that).
/// </remarks>
internal static class WorkerRuntimeSettings
{
    /// <summary>
    /// The AppContext switch the package's build targets write into runtimeconfig.json beside the settings when the
    /// project opts in (<c>&lt;AcceptStrategyRuntimeProfile&gt;Tuned&lt;/AcceptStrategyRuntimeProfile&gt;</c>), so a
    /// log can say who set them.
    /// </summary>
    public const string ProfileMarker = "Kestrel.AcceptStrategies.RuntimeProfile";

    /// <summary>The tuned profile, each knob with why it is there.</summary>
    public static readonly IReadOnlyList<RuntimeKnob> Tuned =
    [
        // Idle thread-pool threads spin before they sleep, which pays with one process per machine; with more processes
        // than cores the spinning steals the cores other workers need (sched_yield and context switches in a profile).
        // The GC is left as the app has it: workstation GC measured no cheaper per request than the Web SDK's server
        // GC with DATAS, and held more memory (docs/runtime-profile.md).
        new("ThreadPool_UnfairSemaphoreSpinLimit", "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", "0"),
    ];

    /// <summary>What to add to a worker's environment, and which knobs the user's own settings kept out.</summary>
    public static (IReadOnlyList<KeyValuePair<string, string>> Applied, IReadOnlyList<string> KeptByUser) Decide(
        WorkerRuntimeProfile profile,
        IReadOnlyList<RuntimeKnob> knobs,
        IEnumerable<string> environmentNames,
        Func<string, object?> runtimeConfig)
    {
        // Names compared ignoring case: a user who wrote DOTNET_GCSERVER meant it, whatever the runtime makes of it.
        var given = new HashSet<string>(environmentNames, StringComparer.OrdinalIgnoreCase);
        var applied = new List<KeyValuePair<string, string>>();
        var kept = new List<string>();
        if (profile == WorkerRuntimeProfile.Inherit)
        {
            return (applied, kept);
        }

        foreach (var knob in knobs)
        {
            var fromEnvironment = given.Contains("DOTNET_" + knob.EnvironmentName) || given.Contains("COMPlus_" + knob.EnvironmentName);
            var fromRuntimeConfig = runtimeConfig(knob.RuntimeConfigProperty) is not null;
            if (fromEnvironment || fromRuntimeConfig)
            {
                kept.Add(fromEnvironment ? knob.Variable
                    : runtimeConfig(ProfileMarker) is "Tuned" ? knob.RuntimeConfigProperty + " (runtimeconfig.json, from the package's opt-in runtime profile)"
                    : knob.RuntimeConfigProperty + " (runtimeconfig.json)");
            }
            else
            {
                applied.Add(new(knob.Variable, knob.Value));
            }
        }

        return (applied, kept);
    }
}
