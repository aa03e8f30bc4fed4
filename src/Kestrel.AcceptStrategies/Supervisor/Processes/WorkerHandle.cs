using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>What the supervisor's loop holds of a live worker: its pidfd and its end of the control socket.</summary>
internal sealed class WorkerHandle(WorkerProcess process, ControlChannel control) : IDisposable
{
    public WorkerProcess Process { get; } = process;

    public ControlChannel Control { get; } = control;

    /// <summary>Completes once every message the worker sent has been posted to the event loop (its end closed).</summary>
    public TaskCompletionSource MessagesRead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose()
    {
        Control.Dispose();

        // Reaped by now: from here on a signal fails instead of reaching whoever reuses the pid.
        Process.Dispose();
    }
}
