using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>
/// A worker process held by a pidfd (<c>pidfd_open(2)</c>): signals go to that process and no other, even after it
/// has exited and been reaped and its pid is reused, where <c>kill(2)</c> could hit a stranger.
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private int _pidfd;

    private WorkerProcess(int pid, int pidfd)
    {
        Pid = pid;
        _pidfd = pidfd;
    }

    public int Pid { get; }

    /// <summary>Readable once the process has exited (and until it is reaped).</summary>
    public int Fd => Volatile.Read(ref _pidfd);

    /// <summary>
    /// Opens a pidfd for a child this process started and has not reaped (so the pid cannot have been reused yet).
    /// </summary>
    public static WorkerProcess Open(int pid)
    {
        var fd = Libc.PidfdOpen(pid);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw DescriptorLimit.Failure($"pidfd_open({pid})", errno, "Worker processes need Linux 5.3 or later (pidfd_open, pidfd_send_signal).");
        }

        // pidfd_open sets close-on-exec itself.
        return new WorkerProcess(pid, fd);
    }

    /// <summary>Sends <paramref name="signal"/>; false once the process is gone (ESRCH) or this handle is closed.</summary>
    public bool TrySignal(int signal)
    {
        var fd = Fd;
        return fd >= 0 && Libc.PidfdSendSignal(fd, signal) == 0;
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _pidfd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }

    public override string ToString() => $"pid {Pid}";
}
