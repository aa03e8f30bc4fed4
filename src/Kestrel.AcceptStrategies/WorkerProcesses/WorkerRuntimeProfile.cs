namespace Kestrel.AcceptStrategies.WorkerProcesses;

/// <summary>
/// Which .NET runtime settings the supervisor gives the worker processes it starts.
/// </summary>
public enum WorkerRuntimeProfile
{
    /// <summary>
    /// Settings measured for many processes on one machine (listed in docs/runtime-profile.md): each is given to a worker only when
    /// neither the supervisor's environment (<c>DOTNET_…</c> or <c>COMPlus_…</c>) nor the app's runtimeconfig.json
    /// sets it, so a setting the user gave always wins.
    /// </summary>
    Tuned,

    /// <summary>Workers inherit the supervisor's environment and runtime settings untouched.</summary>
    Inherit,
}
