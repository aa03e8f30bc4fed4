using System.Globalization;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Processes;

namespace Kestrel.AcceptStrategies.Supervisor.Upgrade;

/// <summary>
/// The previous supervisor's side of a hot upgrade (<c>SIGUSR2</c>, as nginx and Unicorn re-execute their master):
/// starts the executable on disk now with the same command line, handing it every listening socket this supervisor
/// holds (each endpoint's, a <c>ReusePort</c> group whole and in group order), and waits for the successor to say its
/// workers serve. Nothing here stops this supervisor: the caller drains it once the successor serves, and goes on
/// serving if it never does.
/// </summary>
internal static class SuccessorLauncher
{
    // Socket activation's variables describe this process's sockets, which the successor gets by name instead.
    private static readonly string[] s_notInherited = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

    // How long a successor that failed may take to stop before it is killed.
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Starts the successor; its pid, how many sockets it was handed, and a task that completes with null once it
    /// serves, or with why it will not (it exited, or said nothing within <paramref name="timeout"/>, after which it
    /// is stopped). The successor is this process's child until this one exits; a failed one is reaped here.
    /// </summary>
    public static unsafe (int Pid, int Sockets, Task<string?> Outcome) Start(IReadOnlyList<SupervisedEndpoint> endpoints, TimeSpan timeout)
    {
        var pipe = stackalloc int[2];
        if (Libc.Pipe2(pipe, Libc.O_CLOEXEC) != 0)
        {
            throw DescriptorLimit.Failure("pipe2", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }

        int readFd = pipe[0], writeFd = pipe[1];
        int pid;
        List<(string Requested, int[] Fds)> perEndpoint;
        try
        {
            perEndpoint = [.. endpoints.Select(e => (e.Requested, e.HandoverFds()))];
            pid = WorkerSpawner.Spawn([.. perEndpoint.SelectMany(e => e.Fds), writeFd], targets =>
            {
                // targets[i] is the number the i-th inherited descriptor gets in the successor.
                var next = 0;
                var listen = new List<(string Endpoint, int[] Fds)>();
                foreach (var (requested, fds) in perEndpoint)
                {
                    listen.Add((requested, [.. targets.Skip(next).Take(fds.Length)]));
                    next += fds.Length;
                }

                var environment = WorkerSpawner.CurrentEnvironment(
                [
                    new(InheritedListeners.SocketsVariable, WorkerEnvironment.FormatFds(listen)),
                    new(InheritedListeners.ReadyVariable, string.Create(CultureInfo.InvariantCulture, $"ready={targets[next]};from={Environment.ProcessId}")),
                ]);
                foreach (var name in s_notInherited)
                {
                    environment.Remove(name);
                }

                return environment;
            });
        }
        catch
        {
            _ = Libc.Close(readFd);
            throw;
        }
        finally
        {
            // The successor has its own copy: when it exits, the pipe reads end of file.
            _ = Libc.Close(writeFd);
        }

        return (pid, perEndpoint.Sum(e => e.Fds.Length), Task.Factory.StartNew(
            () => Wait(readFd, pid, timeout), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
    }

    private static unsafe string? Wait(int readFd, int pid, TimeSpan timeout)
    {
        try
        {
            var poll = new PollFd { Fd = readFd, Events = Libc.POLLIN };
            var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            int ready;
            while ((ready = Libc.Poll(&poll, 1, (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue))) < 0
                && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Libc.EINTR)
            {
            }

            if (ready > 0)
            {
                byte word;
                var read = Libc.Read(readFd, &word, 1);
                if (read == 1)
                {
                    return null;
                }

                return $"it exited before its workers served ({Reap(pid, TimeSpan.FromSeconds(10))})";
            }

            // Said nothing in time: stopped as any supervisor is, its workers with it (killed if that takes long).
            _ = Libc.Kill(pid, Libc.SIGTERM);
            return $"it did not say its workers serve within {timeout} and was stopped ({Reap(pid, StopBound)})";
        }
        finally
        {
            _ = Libc.Close(readFd);
        }
    }

    /// <summary>Waits (bounded, on a pidfd) for the successor to exit and reaps it; SIGKILL when the bound passes.</summary>
    private static unsafe string Reap(int pid, TimeSpan bound)
    {
        int status;
        try
        {
            using var process = WorkerProcess.Open(pid);
            var poll = new PollFd { Fd = process.Fd, Events = Libc.POLLIN };
            if (Libc.Poll(&poll, 1, (int)bound.TotalMilliseconds) == 0)
            {
                _ = Libc.Kill(pid, Libc.SIGKILL);
                _ = Libc.WaitPid(pid, &status, 0);
                return "killed after " + bound;
            }
        }
        catch (IOException)
        {
            // Already reaped by someone else, or no pidfd: the wait below says which.
        }

        return Libc.WaitPid(pid, &status, 0) == pid ? SupervisedWorker.DescribeStatus(status) : "its exit status is unknown";
    }
}
