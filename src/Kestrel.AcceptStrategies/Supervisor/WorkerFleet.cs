using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Processes;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The live worker processes, for the supervisor's loop: launches them, reads their control sockets, reaps them
/// (one watcher thread for all), and turns all of it into <see cref="SupervisorEvent"/>s. Used from the loop only.
/// </summary>
internal sealed class WorkerFleet(WorkerLauncher launcher, Action<SupervisorEvent> post, ILogger logger) : IDisposable
{
    private readonly Dictionary<SupervisedWorker, WorkerHandle> _handles = [];
    private readonly WorkerExitWatcher _exits = new();
    private readonly CancellationTokenSource _disposing = new();

    public int Count => _handles.Count;

    /// <summary>Starts a worker; throws (leaving nothing open) when it cannot.</summary>
    public (int Pid, WorkerHandle Handle) Launch(SupervisorIntent.Spawn spawn) => launcher.Launch(spawn.Slot.Index, spawn.Generation, spawn.Budget);

    /// <summary>Takes charge of a launched worker: its messages and its exit become events.</summary>
    public void Watch(SupervisedWorker worker, WorkerHandle handle)
    {
        _handles[worker] = handle;
        _ = ReceiveAsync(worker, handle);
        _exits.Watch(handle.Process, status => _ = PostExitAsync(worker, handle, status));
    }

    public bool Send(SupervisedWorker worker, ControlMessage message) =>
        _handles.TryGetValue(worker, out var handle) && handle.Control.TrySend(message.ToString());

    /// <summary>Signals the worker through its pidfd; false once it has exited.</summary>
    public bool Signal(SupervisedWorker worker, int signal) =>
        _handles.TryGetValue(worker, out var handle) && handle.Process.TrySignal(signal);

    /// <summary>The worker was reaped and its exit handled: close its pidfd and control socket.</summary>
    public void Forget(SupervisedWorker worker)
    {
        if (_handles.Remove(worker, out var handle))
        {
            handle.Dispose();
        }
    }

    public void Dispose()
    {
        _disposing.Cancel();
        _exits.Dispose();
        foreach (var handle in _handles.Values)
        {
            handle.Dispose();
        }

        _handles.Clear();
        _disposing.Dispose();
    }

    private async Task ReceiveAsync(SupervisedWorker worker, WorkerHandle handle)
    {
        try
        {
            while (await handle.Control.ReceiveAsync(_disposing.Token).ConfigureAwait(false) is { } text)
            {
                if (ControlMessage.TryParse(text, out var message))
                {
                    post(new SupervisorEvent.Message(worker, message));
                }
            }
        }
        catch (Exception e)
        {
            AcceptStrategyLog.SupervisorEventFailed(logger, e);
        }
        finally
        {
            handle.MessagesRead.TrySetResult();
        }
    }

    private async Task PostExitAsync(SupervisedWorker worker, WorkerHandle handle, int status)
    {
        // The worker's last counts were sent just before it exited: post them before the exit that logs them. Its end of
        // the control socket closed with it (bounded: a child forked without exec could still hold it).
        await Task.WhenAny(handle.MessagesRead.Task, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        post(new SupervisorEvent.Exited(worker, status));
    }
}
