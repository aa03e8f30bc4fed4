using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Supervisor.Systemd;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>
/// Starts one worker: a control socket pair, the descriptors it inherits (control socket, then for each endpoint its
/// accept lock, if any, and its slot's listening sockets), the environment that describes them plus the runtime
/// profile's settings (without the service manager's <c>NOTIFY_SOCKET</c> and watchdog variables), <c>posix_spawn</c>, and a pidfd on the result.
/// </summary>
internal sealed class WorkerLauncher(
    IReadOnlyList<SupervisedEndpoint> endpoints,
    AcceptStrategy strategy,
    int acceptors,
    IReadOnlyList<KeyValuePair<string, string>> runtimeSettings)
{
    /// <summary>The strategy the workers are told to accept with (and the status view shows).</summary>
    public AcceptStrategy Strategy => strategy;

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
            var perEndpoint = new List<(string Endpoint, int[] Sockets, int? Lock)>();
            foreach (var endpoint in endpoints)
            {
                var (sockets, acceptLock) = endpoint.FdsFor(slot);
                perEndpoint.Add((endpoint.Requested, sockets, acceptLock));
                if (acceptLock is { } lockFd)
                {
                    inherited.Add(lockFd);
                }

                inherited.AddRange(sockets);
            }

            pid = WorkerSpawner.Spawn(inherited, targets =>
            {
                // targets[i] is the number inherited[i] gets in the worker.
                var listen = new List<(string Endpoint, int[] Fds)>();
                var locks = new List<(string Endpoint, int[] Fds)>();
                var next = 1;
                foreach (var (endpoint, sockets, acceptLock) in perEndpoint)
                {
                    if (acceptLock is not null)
                    {
                        locks.Add((endpoint, [targets[next++]]));
                    }

                    listen.Add((endpoint, [.. targets.Skip(next).Take(sockets.Length)]));
                    next += sockets.Length;
                }

                // lockfd (the first endpoint's lock) is for a worker of an earlier build, which knows one lock only:
                // started by SIGHUP after a rollback, it still starts, sharing that lock between its endpoints as before.
                var environment = WorkerSpawner.CurrentEnvironment(
                [
                    .. runtimeSettings,
                    new(WorkerEnvironment.WorkerVariable, WorkerEnvironment.Format(slot, generation, budget, targets[0], strategy, acceptors, locks.Count > 0 ? locks[0].Fds[0] : null)),
                    new(WorkerEnvironment.ListenFdsVariable, WorkerEnvironment.FormatFds(listen)),
                    new(WorkerEnvironment.LockFdsVariable, WorkerEnvironment.FormatFds(locks)),
                ]);

                // The service manager's variables describe the supervisor's service, not the worker.
                foreach (var name in ServiceNotifier.NotInheritedVariables)
                {
                    environment.Remove(name);
                }

                return environment;
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
