using Kestrel.AcceptStrategies.Supervisor.Policy;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>The stable names of <see cref="WorkerState"/> in the status view.</summary>
internal static class WorkerStatusStates
{
    public static string Name(this WorkerState state) => state switch
    {
        WorkerState.Starting => "starting",
        WorkerState.Standby => "standby",
        WorkerState.Active => "active",
        WorkerState.Draining => "draining",
        // A state added later still shows rather than breaking the whole view.
        _ => state.ToString().ToLowerInvariant(),
    };
}
