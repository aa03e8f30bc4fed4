using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>
/// One thread for all workers: waits in <c>poll(2)</c> on their pidfds, reaps each one that exits and reports its
/// <c>waitpid</c> status. The pidfd stays open until its owner disposes the <see cref="WorkerProcess"/>, after the
/// report, so a signal sent in between fails with ESRCH instead of reaching a process that reused the pid.
/// </summary>
internal sealed unsafe class WorkerExitWatcher : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<int, (WorkerProcess Process, Action<int> OnExit)> _watched = [];
    private readonly EventFd _wake = new();
    private readonly Thread _thread;
    private bool _disposed;

    public WorkerExitWatcher()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "worker-reaper" };
        _thread.Start();
    }

    /// <summary>Calls <paramref name="onExit"/> with the wait status (-1 if unknown) once, on the watcher's thread.</summary>
    public void Watch(WorkerProcess process, Action<int> onExit)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _watched[process.Fd] = (process, onExit);
        }

        Wake();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        Wake();
        _thread.Join();
        _wake.Dispose();
    }

    private void Wake() => _wake.Signal();

    private void Run()
    {
        // This thread lives as long as the supervisor: a successor (SIGUSR2), spawned with the terminal's signals
        // blocked, gets them here whichever thread built its host (poll(2) below retries on EINTR).
        WorkerSignals.UnblockOnThisThread();
        while (true)
        {
            PollFd[] fds;
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                fds = new PollFd[_watched.Count + 1];
                fds[0] = new PollFd { Fd = _wake.Fd, Events = Libc.POLLIN };
                var i = 1;
                foreach (var fd in _watched.Keys)
                {
                    fds[i++] = new PollFd { Fd = fd, Events = Libc.POLLIN };
                }
            }

            fixed (PollFd* p = fds)
            {
                if (Libc.Poll(p, (nuint)fds.Length, -1) < 0)
                {
                    // EINTR; anything else (ENOMEM) is retried too, as there is no one to report it to but the loop.
                    continue;
                }
            }

            if (fds[0].Revents != 0)
            {
                _wake.Reset();
            }

            for (var i = 1; i < fds.Length; i++)
            {
                if (fds[i].Revents != 0)
                {
                    Reap(fds[i].Fd);
                }
            }
        }
    }

    private void Reap(int fd)
    {
        (WorkerProcess Process, Action<int> OnExit) entry;
        lock (_gate)
        {
            if (!_watched.Remove(fd, out entry))
            {
                return;
            }
        }

        int status;
        int result;
        while ((result = Libc.WaitPid(entry.Process.Pid, &status, Libc.WNOHANG)) < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR)
        {
        }

        // ECHILD: something else reaped it (SIGCHLD ignored); 0 cannot happen for a pidfd that polled readable.
        entry.OnExit(result > 0 ? status : -1);
    }
}
