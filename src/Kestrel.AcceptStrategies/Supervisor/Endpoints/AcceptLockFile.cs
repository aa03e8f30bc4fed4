using System.Runtime.InteropServices;
using System.Text;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Supervisor.Endpoints;

/// <summary>
/// One endpoint's accept lock file under the Serialized strategy, held open by the supervisor (with the endpoint's
/// sockets) and inherited by every worker, whose acceptors of that endpoint each open <c>/proc/self/fd/N</c> (a new
/// open file description, so a flock of its own). Unlinked at once: there is no path for a tmp cleaner to remove and
/// nothing left behind by a <c>kill -9</c>.
/// </summary>
internal sealed unsafe class AcceptLockFile : IDisposable
{
    private int _fd;

    private AcceptLockFile(int fd) => _fd = fd;

    public int Fd => _fd;

    public static AcceptLockFile Create()
    {
        // A fresh 0700 directory with an unpredictable name: no other user can pre-create or hold the lock file.
        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        var parent = !string.IsNullOrEmpty(runtime) && Directory.Exists(runtime) ? runtime : Path.GetTempPath();
        var template = Encoding.UTF8.GetBytes(Path.Combine(parent, "kestrel-accept-XXXXXX") + "\0");
        fixed (byte* p = template)
        {
            if (Libc.Mkdtemp(p) is null)
            {
                throw new IOException($"Cannot create a private directory for the accept lock in {parent}: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
            }
        }

        var directory = Encoding.UTF8.GetString(template, 0, template.Length - 1);
        var path = Path.Combine(directory, "accept.lock");
        try
        {
            var fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, Convert.ToInt32("600", 8));
            return fd >= 0
                ? new AcceptLockFile(fd)
                : throw new IOException($"Cannot create the accept lock file {path}: {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
        }
        finally
        {
            File.Delete(path);
            Directory.Delete(directory);
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }
}
