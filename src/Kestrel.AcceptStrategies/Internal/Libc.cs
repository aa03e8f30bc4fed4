using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// The Linux calls .NET does not expose, in one place: <c>epoll</c> and <c>eventfd</c> for the event loops (typed by
/// <see cref="Epoll"/> and <see cref="EventFd"/>), the socket calls their connections make without .NET's socket engine
/// (<c>accept4</c>, <c>recv</c>, <c>send</c>/<c>sendmsg</c>, <c>shutdown</c>, <c>SO_LINGER</c>), <c>poll</c>, <c>fcntl</c>
/// (dup with close-on-exec, <c>O_NONBLOCK</c>), <c>flock</c>, <c>socketpair</c> (the control channel, a worker's
/// warm-up), <c>statx</c> (the status view's socket file), what the supervisor needs to start and watch workers with
/// chosen descriptors (<c>posix_spawn</c> with a signal mask, <c>pidfd_open</c>, <c>pidfd_send_signal</c>,
/// <c>waitpid</c>, <c>getrlimit</c> for the descriptor limit), what a worker needs to take the terminal's signals over
/// (<c>signal</c>, <c>pthread_sigmask</c>), <c>unsetenv</c>, and <c>clock_gettime</c> (the monotonic clock systemd reads).
/// </summary>
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";

    public const short POLLIN = 0x001;

    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

    public const int F_DUPFD_CLOEXEC = 1030;
    public const int F_GETFD = 1;
    public const int F_SETFD = 2;
    public const int FD_CLOEXEC = 1;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int O_NONBLOCK = 0x800;
    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_CLOEXEC = 0x80000;

    public const int LOCK_EX = 2;
    public const int LOCK_UN = 8;

    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_SEQPACKET = 5;
    public const int SOCK_CLOEXEC = 0x80000;

    public const int SIGHUP = 1;
    public const int SIGKILL = 9;
    public const int SIGUSR2 = 12;
    public const int SIGPIPE = 13;
    public const int SIGTERM = 15;
    public const int SIGTTIN = 21;
    public const int SIGTTOU = 22;
    public const int SIG_UNBLOCK = 1;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    /// <summary>Bytes reserved for glibc's opaque spawn structures (80 and 336 bytes on 64-bit Linux) and a sigset_t (128).</summary>
    public const int OpaqueStructBytes = 1024;

    public const int SOL_SOCKET = 1;
    public const int SO_LINGER = 13;
    public const int SO_REUSEPORT = 15;
    public const int SO_ATTACH_REUSEPORT_CBPF = 51;
    public const int SO_DETACH_REUSEPORT_BPF = 68;
    public const int IPPROTO_TCP = 6;
    public const int TCP_DEFER_ACCEPT = 9;
    public const int TCP_INFO = 11;

    public const int CLOCK_MONOTONIC = 1;
    public const int RLIMIT_NOFILE = 7;

    public const int SOCK_NONBLOCK = 0x800;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int SHUT_RDWR = 2;

    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EBADF = 9;
    public const int ECHILD = 10;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EEXIST = 17;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int E2BIG = 7;
    public const int EPERM = 1;
    public const int EINVAL = 22;
    public const int ENOPROTOOPT = 92;
    public const int EPIPE = 32;
    public const int EPROTO = 71;
    public const int ECONNABORTED = 103;
    public const int ECONNRESET = 104;
    public const int ENOBUFS = 105;
    public const int ENOTCONN = 107;
    public const int ETIMEDOUT = 110;
    public const int EHOSTUNREACH = 113;

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;
    public const uint EPOLLIN = 0x1;
    public const uint EPOLLOUT = 0x4;
    public const uint EPOLLERR = 0x8;
    public const uint EPOLLHUP = 0x10;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLEXCLUSIVE = 1u << 28;
    public const uint EPOLLET = 1u << 31;

    /// <summary>The largest socket address accept4 can return here (sockaddr_in6 is 28 bytes).</summary>
    public const int SocketAddressBytes = 28;

    /// <summary>iovecs per sendmsg; a response rarely spans more than a few pool blocks.</summary>
    public const int MaxIoVectors = 16;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary><c>struct msghdr</c> on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* IoVectors;
        public nuint IoVectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary><c>struct timespec</c> on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary><c>struct rlimit</c> on 64-bit Linux; <see cref="ulong.MaxValue"/> is <c>RLIM_INFINITY</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ResourceLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    /// <summary><c>struct sock_filter</c>: one classic BPF instruction.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public readonly record struct SocketFilter(ushort Code, byte JumpIfTrue, byte JumpIfFalse, uint K);

    /// <summary><c>struct sock_fprog</c> on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SocketFilterProgram
    {
        public ushort Length;
        public SocketFilter* Filter;
    }

    /// <summary><c>struct linger</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Linger
    {
        public int OnOff;
        public int Seconds;
    }

    [LibraryImport(LibraryName, EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, byte* address, uint* addressLength, int flags);

    [LibraryImport(LibraryName, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(LibraryName, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(LibraryName, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MessageHeader* message, int flags);

    [LibraryImport(LibraryName, EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);

    [LibraryImport(LibraryName, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, byte* address, uint* addressLength);

    [LibraryImport(LibraryName, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(LibraryName, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport(LibraryName, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, void* @event);

    [LibraryImport(LibraryName, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, void* events, int maxevents, int timeout);

    [LibraryImport(LibraryName, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport(LibraryName, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport(LibraryName, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buf, nuint count);

    [LibraryImport(LibraryName, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibraryName, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(LibraryName, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(LibraryName, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(LibraryName, EntryPoint = "mkdtemp", SetLastError = true)]
    public static partial byte* Mkdtemp(byte* template);

    [LibraryImport(LibraryName, EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* sv);

    [LibraryImport(LibraryName, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(LibraryName, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(LibraryName, EntryPoint = "getppid")]
    public static partial int GetParentPid();

    [LibraryImport(LibraryName, EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    public const int WNOHANG = 1;

    // Linux's numbers for the pidfd calls are the same on every architecture (they come after the tables were unified).
    private const long SYS_pidfd_send_signal = 424;
    private const long SYS_pidfd_open = 434;

    [LibraryImport(LibraryName, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long arg1, long arg2, long arg3, long arg4);

    /// <summary><c>pidfd_open(2)</c> (Linux 5.3): a descriptor that names this process and no later one with its pid.</summary>
    public static int PidfdOpen(int pid) => (int)Syscall(SYS_pidfd_open, pid, 0, 0, 0);

    /// <summary><c>pidfd_send_signal(2)</c>: fails with ESRCH once the process has exited, even if its pid was reused.</summary>
    public static int PidfdSendSignal(int pidfd, int signal) => (int)Syscall(SYS_pidfd_send_signal, pidfd, signal, 0, 0);

    [LibraryImport(LibraryName, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buf, nuint count);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int PosixSpawnFileActionsInit(void* fileActions);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int PosixSpawnFileActionsAddDup2(void* fileActions, int fd, int newFd);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int PosixSpawnFileActionsDestroy(void* fileActions);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawnattr_init")]
    public static partial int PosixSpawnAttrInit(void* attributes);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int PosixSpawnAttrSetFlags(void* attributes, short flags);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int PosixSpawnAttrSetSigMask(void* attributes, void* sigset);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int PosixSpawnAttrSetSigDefault(void* attributes, void* sigset);

    [LibraryImport(LibraryName, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int PosixSpawnAttrDestroy(void* attributes);

    [LibraryImport(LibraryName, EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* sigset);

    [LibraryImport(LibraryName, EntryPoint = "sigaddset")]
    public static partial int SigAddSet(void* sigset, int signal);

    /// <summary><c>signal(3)</c>: glibc's installs the handler with <c>SA_RESTART</c>; returns <c>SIG_ERR</c> (-1) on failure.</summary>
    [LibraryImport(LibraryName, EntryPoint = "signal", SetLastError = true)]
    public static partial nint Signal(int signal, nint handler);

    [LibraryImport(LibraryName, EntryPoint = "pthread_sigmask")]
    public static partial int PthreadSigMask(int how, void* set, void* oldSet);

    [LibraryImport(LibraryName, EntryPoint = "clock_gettime", SetLastError = true)]
    public static partial int ClockGetTime(int clock, TimeSpec* time);

    [LibraryImport(LibraryName, EntryPoint = "getrlimit", SetLastError = true)]
    public static partial int GetRLimit(int resource, ResourceLimit* limit);

    [LibraryImport(LibraryName, EntryPoint = "unsetenv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UnsetEnv(string name);

    /// <summary>
    /// Removes a variable from .NET's environment and from libc's: .NET's is its own copy, and native code and
    /// children started with system(3) or posix_spawn read libc's.
    /// </summary>
    public static void RemoveEnvironmentVariable(string name)
    {
        Environment.SetEnvironmentVariable(name, null);
        if (UnsetEnv(name) != 0)
        {
            throw new IOException($"unsetenv({name}) failed: {ErrnoName(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>Sets or clears close-on-exec on a descriptor.</summary>
    public static void SetCloseOnExec(int fd, bool value)
    {
        var flags = Fcntl(fd, F_GETFD, 0);
        if (flags < 0 || Fcntl(fd, F_SETFD, value ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0)
        {
            throw new IOException($"fcntl(F_SETFD) on descriptor {fd} failed: {ErrnoName(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>The symbolic name of an errno value, for logs and metric tags.</summary>
    public static string ErrnoName(int errno) => errno switch
    {
        EINTR => "EINTR",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ENOBUFS => "ENOBUFS",
        EPIPE => "EPIPE",
        ECONNRESET => "ECONNRESET",
        ETIMEDOUT => "ETIMEDOUT",
        ESRCH => "ESRCH",
        ECHILD => "ECHILD",
        E2BIG => "E2BIG",
        EPERM => "EPERM",
        EINVAL => "EINVAL",
        ENOPROTOOPT => "ENOPROTOOPT",
        _ => "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
