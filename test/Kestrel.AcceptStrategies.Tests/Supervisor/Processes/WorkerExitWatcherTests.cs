using System.Runtime.InteropServices;
using System.Text;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.Supervisor.Processes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Processes;

/// <summary>
/// Real child processes held by pidfd and reaped by one watcher thread: exit statuses, and no signal after the
/// reap reaches anyone (the pid may already belong to another process).
/// </summary>
public sealed class WorkerExitWatcherTests
{
    [Fact]
    public async Task ExitCode_Reported()
    {
        using var watcher = new WorkerExitWatcher();
        using var process = WorkerProcess.Open(Spawn("/bin/sh", "-c", "exit 7"));

        var status = await WatchAsync(watcher, process);

        Assert.Equal("exit code 7", SupervisedWorker.DescribeStatus(status));
    }

    [Fact]
    public async Task Signalled_KilledBySignalReported()
    {
        using var watcher = new WorkerExitWatcher();
        using var process = WorkerProcess.Open(Spawn("/bin/sleep", "30"));
        var exited = WatchAsync(watcher, process);

        Assert.True(process.TrySignal(Libc.SIGKILL));

        Assert.Equal("killed by signal 9 (SIGKILL)", SupervisedWorker.DescribeStatus(await exited));
    }

    [Fact]
    public async Task AfterReap_SignalFailsInsteadOfReachingAReusedPid()
    {
        using var watcher = new WorkerExitWatcher();
        using var process = WorkerProcess.Open(Spawn("/bin/sh", "-c", "exit 0"));
        await WatchAsync(watcher, process);

        // Reaped: kill(2) on this pid could now hit an unrelated process; the pidfd cannot.
        Assert.False(process.TrySignal(Libc.SIGTERM));
        Assert.Equal(Libc.ESRCH, Marshal.GetLastPInvokeError());

        process.Dispose();
        Assert.False(process.TrySignal(Libc.SIGTERM));
    }

    [Fact]
    public async Task ManyProcesses_OneWatcherThread()
    {
        using var watcher = new WorkerExitWatcher();
        var processes = Enumerable.Range(0, 8).Select(i => WorkerProcess.Open(Spawn("/bin/sh", "-c", $"exit {i}"))).ToList();
        try
        {
            var statuses = await Task.WhenAll(processes.Select(p => WatchAsync(watcher, p)));

            Assert.Equal(Enumerable.Range(0, 8).Select(i => $"exit code {i}"), statuses.Select(SupervisedWorker.DescribeStatus));
            var reapers = Directory.GetDirectories("/proc/self/task").Count(t => File.ReadAllText(Path.Combine(t, "comm")).Trim() == "worker-reaper");
            Assert.Equal(1, reapers);
        }
        finally
        {
            processes.ForEach(p => p.Dispose());
        }
    }

    private static Task<int> WatchAsync(WorkerExitWatcher watcher, WorkerProcess process)
    {
        var exited = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.Watch(process, status => exited.TrySetResult(status));
        return exited.Task.WaitAsync(TestServer.Timeout);
    }

    /// <summary>posix_spawn, so that this test, not .NET's Process class, is the one to reap the child.</summary>
    private static unsafe int Spawn(params string[] argv)
    {
        var strings = argv.Select(a => Marshal.StringToCoTaskMemUTF8(a)).ToArray();
        var pointers = new nint[strings.Length + 1];
        strings.CopyTo(pointers, 0);
        var path = Encoding.UTF8.GetBytes(argv[0] + "\0");
        try
        {
            int pid;
            fixed (byte* p = path)
            fixed (nint* a = pointers)
            {
                nint env = 0;
                var result = Libc.PosixSpawn(&pid, p, null, null, (byte**)a, (byte**)&env);
                Assert.Equal(0, result);
            }

            return pid;
        }
        finally
        {
            Array.ForEach(strings, Marshal.FreeCoTaskMem);
        }
    }
}
