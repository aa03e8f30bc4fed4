using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// The few Linux calls <see cref="System.Net.Sockets.Socket"/> does not expose: <c>poll</c> on a listening socket plus
/// a stop <c>eventfd</c>, <c>dup</c> with close-on-exec, and <c>O_NONBLOCK</c> on a socket other processes may share.
/// </summary>
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";

    public const short POLLIN = 0x001;

    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

    public const int F_DUPFD_CLOEXEC = 1030;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int O_NONBLOCK = 0x800;

    public const int SOL_SOCKET = 1;
    public const int SO_REUSEPORT = 15;
    public const int IPPROTO_TCP = 6;
    public const int TCP_DEFER_ACCEPT = 9;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOBUFS = 105;

    [LibraryImport(LibraryName, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport(LibraryName, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport(LibraryName, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buf, nuint count);

    [LibraryImport(LibraryName, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibraryName, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, int arg);

    /// <summary>The symbolic name of an errno value, for logs and metric tags.</summary>
    public static string ErrnoName(int errno) => errno switch
    {
        EINTR => "EINTR",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ENOBUFS => "ENOBUFS",
        _ => "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
