using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// Held by the <c>Worker processes</c> collection of each test project for as long as it runs: <c>dotnet test</c> on the
/// solution runs the test projects at the same time, and worker-process tests each use both cores, so the projects of
/// one checkout take turns through a <c>flock(2)</c> on a file in the temp directory named after the checkout.
/// </summary>
public sealed class WorkerProcessesLock : IDisposable
{
    private const int LOCK_EX = 2;
    private const int O_RDWR = 2;
    private const int O_CREAT = 0x40;
    private const int O_CLOEXEC = 0x80000;

    /// <summary>Longer than any one project's worker-process tests; beyond it something is stuck.</summary>
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(20);

    private int _fd;

    public WorkerProcessesLock()
    {
        var checkout = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(ChildProcess.BenchmarkAppPath)!, "../../../../.."));
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(checkout)))[..16];
        var path = Path.Combine(Path.GetTempPath(), $"kestrel-acceptstrategies-worker-processes-{hash}.lock");

        // Not through FileStream, which takes a flock of its own (and fails at once rather than wait).
        _fd = Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x1B6);
        if (_fd < 0)
        {
            throw new IOException($"Cannot open {path}: errno {Marshal.GetLastPInvokeError()}");
        }

        var fd = _fd;
        var locked = Task.Run(() => Flock(fd, LOCK_EX) == 0 ? 0 : Marshal.GetLastPInvokeError());
        if (!locked.Wait(s_timeout))
        {
            throw new TimeoutException($"Another test run of {checkout} held {path} for {s_timeout}.");
        }

        if (locked.Result != 0)
        {
            throw new IOException($"flock({path}) failed: errno {locked.Result}");
        }
    }

    /// <summary>Closing the descriptor releases the lock (as the process ending would).</summary>
    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Close(fd);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static extern int Flock(int fd, int operation);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
