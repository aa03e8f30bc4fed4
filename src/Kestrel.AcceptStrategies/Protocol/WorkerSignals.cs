using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>
/// SIGHUP, SIGTTIN, SIGTTOU and SIGUSR2 are the supervisor's: a terminal (or <c>kill -- -PGID</c>, or
/// <c>systemctl kill</c> without <c>--kill-whom=main</c>) sends them to the whole process group, and their default
/// actions would end or stop a worker, or a successor supervisor (<c>SIGUSR2</c>) before its own handlers exist. Both
/// are spawned with the four blocked, so from their first instruction they stay pending and do nothing; this takes over
/// as soon as the library runs in such a process (<c>UseWorkerProcesses()</c>, in a process a supervisor started:
/// undoing the block the supervisor set is the one thing the library does before the host starts, because every thread
/// started before it keeps the block). A successor's handlers replace the no-op ones when its host starts.
/// </summary>
/// <remarks>
/// <para>
/// The handler is a native no-op (libc's <c>abs</c>, which only computes on its argument): a caught signal, unlike an
/// ignored one, is reset to the default in every process the worker starts, whether by exec or by .NET's fork path,
/// and .NET would keep an ignored signal ignored rather than install its own handler. Once it is installed the
/// signals are unblocked on the calling thread, and every thread it starts from now on inherits the clean mask:
/// .NET's <c>Process.Start</c> gives a child the mask of the thread that starts it.
/// </para>
/// <para>
/// Threads that already ran keep the four blocked: the runtime's own (GC, finalizer, debugger, tiered compilation)
/// and any the app started before <c>UseWorkerProcesses()</c>. They start no processes.
/// </para>
/// </remarks>
internal static unsafe class WorkerSignals
{
    public static readonly int[] Terminal = [Libc.SIGHUP, Libc.SIGTTIN, Libc.SIGTTOU, Libc.SIGUSR2];

    /// <summary>Adds the terminal signals to a <c>sigset_t</c>.</summary>
    public static void AddTo(void* sigset)
    {
        foreach (var signal in Terminal)
        {
            if (Libc.SigAddSet(sigset, signal) != 0)
            {
                throw new IOException($"sigaddset({signal}) failed.");
            }
        }
    }

    /// <summary>Catches the terminal signals with a handler that does nothing, then unblocks them on this thread.</summary>
    public static void TakeOver()
    {
        var libc = NativeLibrary.Load("libc", typeof(WorkerSignals).Assembly, null);
        var noOp = NativeLibrary.GetExport(libc, "abs");
        foreach (var signal in Terminal)
        {
            if (Libc.Signal(signal, noOp) == -1)
            {
                throw new IOException($"signal({signal}) failed: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
            }
        }

        UnblockOnThisThread();
    }

    /// <summary>
    /// Unblocks the terminal signals on the calling thread only: a long-lived thread of a supervisor calls it, so its
    /// signals have a thread to arrive on whatever thread built its host.
    /// </summary>
    public static void UnblockOnThisThread()
    {
        var set = stackalloc byte[Libc.OpaqueStructBytes];
        _ = Libc.SigEmptySet(set);
        AddTo(set);
        var result = Libc.PthreadSigMask(Libc.SIG_UNBLOCK, set, null);
        if (result != 0)
        {
            throw new IOException($"pthread_sigmask failed: {Libc.ErrnoName(result)}");
        }
    }
}
