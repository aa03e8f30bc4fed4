using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// Starts one worker: a control socket pair, the descriptors it inherits (control socket, accept lock, its slot's
/// listening sockets), the environment that describes them plus the runtime profile's settings, <c>posix_spawn</c>,
/// and a pidfd on the result.
/// </summary>
internal sealed class WorkerLauncher(
    IReadOnlyList<SupervisedEndpoint> endpoints,
    AcceptStrategy strategy,
    AcceptLockFile? lockFile,
    IReadOnlyList<KeyValuePair<string, string>> runtimeSettings)
{
    /// <summary>The new worker's pid and handle; throws (leaving nothing open) when any step fails.</summary>
    public unsafe (int Pid, WorkerHandle Handle) Launch(int slot, int generation, long budget)
    {
        ControlChannel? supervisorEnd = null;
        ControlChannel? workerEnd = null;
        int pid;
        try
        {
            (supervisorEnd, workerEnd) = ControlChannel.CreatePair();
            var inherited = new List<int> { workerEnd.Fd };
            if (lockFile is not null)
            {
                inherited.Add(lockFile.Fd);
            }

            var perEndpoint = new List<(string Endpoint, int[] Fds)>();
            foreach (var endpoint in endpoints)
            {
                var fds = endpoint.FdsFor(slot);
                perEndpoint.Add((endpoint.Requested, fds));
                inherited.AddRange(fds);
            }

            pid = WorkerSpawner.Spawn(inherited, targets =>
            {
                // targets[i] is the number inherited[i] gets in the worker.
                var lockIndex = lockFile is null ? 0 : 1;
                var mapped = new List<(string, int[])>();
                var next = 1 + lockIndex;
                foreach (var (endpoint, fds) in perEndpoint)
                {
                    mapped.Add((endpoint, [.. targets.Skip(next).Take(fds.Length)]));
                    next += fds.Length;
                }

                return WorkerSpawner.CurrentEnvironment(
                [
                    .. runtimeSettings,
                    new(WorkerEnvironment.WorkerVariable, WorkerEnvironment.Format(slot, generation, budget, targets[0], strategy, lockIndex > 0 ? targets[1] : null)),
                    new(WorkerEnvironment.ListenFdsVariable, WorkerEnvironment.FormatListenFds(mapped)),
                ]);
            });
        }
        catch
        {
            supervisorEnd?.Dispose();
            throw;
        }
        finally
        {
            // The worker has its own copy now.
            workerEnd?.Dispose();
        }

        try
        {
            return (pid, new WorkerHandle(WorkerProcess.Open(pid), supervisorEnd));
        }
        catch
        {
            // Not reaped yet, so the pid is still this child's.
            _ = Libc.Kill(pid, Libc.SIGKILL);
            _ = Libc.WaitPid(pid, null, 0);
            supervisorEnd.Dispose();
            throw;
        }
    }
}
