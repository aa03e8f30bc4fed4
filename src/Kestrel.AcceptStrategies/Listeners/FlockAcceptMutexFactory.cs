using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// The accept mutex across processes, as Apache's <c>AcceptMutex flock</c> and Starman do it: <c>flock(2)</c> on one
/// lock file. Every acceptor opens the file itself, because a flock belongs to an open file description: acceptors
/// sharing one description would all "hold" it at once. Not through <see cref="FileStream"/>, which takes its own lock.
/// </summary>
internal sealed class FlockAcceptMutexFactory(string lockPath) : IAcceptMutexFactory
{
    public string Kind => "flock";

    /// <summary>
    /// The lock file a supervisor passed as an open, unlinked descriptor: <c>/proc/self/fd/N</c> opens the same file
    /// as a new open file description, so each acceptor still holds a flock of its own.
    /// </summary>
    public static FlockAcceptMutexFactory ForInheritedFd(int fd) =>
        new(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"/proc/self/fd/{fd}"));

    public IAcceptMutex Create() => new FlockMutex(lockPath);

    public void Dispose()
    {
        // Each mutex owns its descriptor.
    }

    private sealed class FlockMutex : IAcceptMutex
    {
        private int _fd;

        public FlockMutex(string path)
        {
            _fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
            if (_fd < 0)
            {
                throw new IOException($"Cannot open the accept lock file '{path}': {Libc.ErrnoName(Marshal.GetLastPInvokeError())}");
            }
        }

        public bool IsCancellable => false;

        public bool TryEnter(CancellationToken stopping)
        {
            if (stopping.IsCancellationRequested)
            {
                return false;
            }

            while (Libc.Flock(_fd, Libc.LOCK_EX) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR)
                {
                    throw new IOException($"flock on the accept lock file failed: {Libc.ErrnoName(errno)}");
                }
            }

            if (stopping.IsCancellationRequested)
            {
                Exit();
                return false;
            }

            return true;
        }

        public void Exit() => _ = Libc.Flock(_fd, Libc.LOCK_UN);

        public void Dispose()
        {
            var fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0)
            {
                _ = Libc.Close(fd);
            }
        }
    }
}
