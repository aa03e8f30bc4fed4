using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace UringProbe;

/// <summary>
/// The least an HTTP/1.1 keep-alive server does per request, on one thread: read what a connection sent, count the
/// requests in it (each ends with an empty line; no bodies), answer each with the same fixed response. With
/// <c>--engine=epoll</c> as this library's event loops do it (<c>epoll_wait</c>, then <c>recv</c> and <c>send</c> per
/// ready connection); with <c>--engine=uring</c> through io_uring (accept, receive and send submitted as requests,
/// every batch of them in one <c>io_uring_enter</c>, which also waits for the next completions). The difference in
/// CPU per request between the two is what an io_uring engine could save on the same work; everything above it
/// (Kestrel, the app) costs the same on either.
/// </summary>
/// <remarks>
/// Started by the compare harness like BenchmarkApp: <c>--urls=http://127.0.0.1:PORT</c> (loopback only), and it
/// prints "Application started." once listening.
/// </remarks>
internal static unsafe partial class Program
{
    private static readonly byte[] s_response =
        "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nServer: probe\r\n\r\nHello, World!"u8.ToArray();

    // Responses prepared back to back, for a read that held several requests.
    private const int Batch = 64;

    private static string s_listening = "";

    private static int Main(string[] args)
    {
        string? url = null;
        var engine = "epoll";
        var setup = "defer";
        foreach (var argument in args)
        {
            if (argument.StartsWith("--urls=", StringComparison.Ordinal))
            {
                url = argument["--urls=".Length..];
            }
            else if (argument.StartsWith("--engine=", StringComparison.Ordinal))
            {
                engine = argument["--engine=".Length..];
            }
            else if (argument.StartsWith("--setup=", StringComparison.Ordinal))
            {
                setup = argument["--setup=".Length..];
            }
            else if (!argument.StartsWith("--MeterSnapshotPath=", StringComparison.Ordinal))
            {
                return Fail($"unknown argument {argument}");
            }
        }

        if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || !IPAddress.TryParse(uri.Host, out var address))
        {
            return Fail("--urls=http://127.0.0.1:PORT is required");
        }

        if (!IPAddress.IsLoopback(address))
        {
            return Fail($"{address} is not a loopback address: the probe listens on loopback only");
        }

        if (engine is not ("epoll" or "uring"))
        {
            return Fail($"--engine={engine}: epoll or uring");
        }

        if (!Uring.SetupFlags.TryGetValue(setup, out var setupFlags))
        {
            return Fail($"--setup={setup}: {string.Join(", ", Uring.SetupFlags.Keys)}");
        }

        using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.NoDelay = true;
        listener.Bind(new IPEndPoint(address, uri.Port));
        listener.Listen(1024);
        listener.Blocking = false;
        var listenFd = (int)listener.SafeHandle.DangerousGetHandle();

        var responses = (byte*)NativeMemory.Alloc((nuint)(s_response.Length * Batch));
        for (var i = 0; i < Batch; i++)
        {
            s_response.CopyTo(new Span<byte>(responses + (i * s_response.Length), s_response.Length));
        }

        s_listening = $"http://{listener.LocalEndPoint}";
        return engine == "epoll" ? Epoll.Run(listenFd, responses) : Uring.Run(listenFd, responses, setup, setupFlags);
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"UringProbe: {message}");
        return 2;
    }

    private static int ResponseLength => s_response.Length;

    /// <summary>Requests completed by <paramref name="length"/> more bytes: empty lines ("\r\n\r\n") seen, across reads.</summary>
    private static int CountRequests(byte* bytes, int length, ref int matched)
    {
        var requests = 0;
        for (var i = 0; i < length; i++)
        {
            var b = bytes[i];
            var expected = (matched & 1) == 0 ? (byte)'\r' : (byte)'\n';
            if (b == expected)
            {
                if (++matched == 4)
                {
                    requests++;
                    matched = 0;
                }
            }
            else
            {
                matched = b == '\r' ? 1 : 0;
            }
        }

        return requests;
    }

    private static void Started(string engine)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"UringProbe: {engine}, pid {Environment.ProcessId}"));

        // The lines the compare harness and the tests wait for, as Kestrel writes them.
        Console.WriteLine($"Now listening on: {s_listening}");
        Console.WriteLine("Application started.");
    }

    private static class Epoll
    {
        private const int EpollIn = 0x1;
        private const int EpollCtlAdd = 1;
        private const int Stride = 12; // struct epoll_event is packed on x86-64: events at 0, data at 4

        public static int Run(int listenFd, byte* responses)
        {
            var epfd = EpollCreate1(0x80000);
            if (epfd < 0 || Add(epfd, listenFd) != 0)
            {
                return Fail($"epoll: errno {Marshal.GetLastPInvokeError()}");
            }

            const int maxEvents = 256;
            var events = (byte*)NativeMemory.AllocZeroed(maxEvents * Stride);
            var buffer = (byte*)NativeMemory.Alloc(64 * 1024);
            var matched = new int[1 << 16];
            Started("epoll");
            while (true)
            {
                var n = EpollWait(epfd, events, maxEvents, -1);
                for (var i = 0; i < n; i++)
                {
                    var fd = (int)*(ulong*)(events + (i * Stride) + 4);
                    if (fd == listenFd)
                    {
                        int connection;
                        while ((connection = Accept4(listenFd, null, null, 0x800 | 0x80000)) >= 0)
                        {
                            matched[connection] = 0;
                            _ = Add(epfd, connection);
                        }

                        continue;
                    }

                    var read = Recv(fd, buffer, 64 * 1024, 0);
                    if (read > 0)
                    {
                        var requests = CountRequests(buffer, (int)read, ref matched[fd]);
                        while (requests > 0)
                        {
                            var now = Math.Min(requests, Batch);
                            SendAll(fd, responses, now * ResponseLength);
                            requests -= now;
                        }
                    }
                    else if (read == 0 || Marshal.GetLastPInvokeError() != 11)
                    {
                        // The close takes the descriptor out of the set.
                        _ = Close(fd);
                    }
                }
            }
        }

        private static int Add(int epfd, int fd)
        {
            var ev = stackalloc byte[Stride];
            *(uint*)ev = EpollIn;
            *(ulong*)(ev + 4) = (ulong)fd;
            return EpollCtl(epfd, EpollCtlAdd, fd, ev);
        }

        private static void SendAll(int fd, byte* bytes, int length)
        {
            while (length > 0)
            {
                var sent = Send(fd, bytes, length, 0x4000);
                if (sent > 0)
                {
                    bytes += sent;
                    length -= (int)sent;
                }
                else if (Marshal.GetLastPInvokeError() != 11)
                {
                    return;
                }
            }
        }
    }

    private static class Uring
    {
        private const int SysSetup = 425, SysEnter = 426;
        private const uint SetupCoopTaskrun = 1 << 8, SetupTaskrunFlag = 1 << 9, SetupSingleIssuer = 1 << 12, SetupDeferTaskrun = 1 << 13;
        private const uint FeatSingleMmap = 1;
        private const uint EnterGetEvents = 1;
        private const byte OpAccept = 13, OpSend = 26, OpRecv = 27;
        private const ushort AcceptMultishot = 1;
        private const uint CqeFMore = 2;
        private const ulong AcceptTag = ulong.MaxValue;
        private const ulong RecvOp = 1, SendOp = 2;
        private const int RecvBytes = 4096;

        private static int s_ring;
        private static byte* s_sqes;
        private static uint* s_sqHead, s_sqTail, s_sqArray, s_cqHead, s_cqTail;
        private static byte* s_cqes;
        private static uint s_sqMask, s_sqEntries, s_cqMask, s_sqLocalTail, s_pending;

        /// <summary>
        /// <c>--setup</c>: when the kernel runs a completion's deferred work (the receive or send itself, once the socket
        /// is ready). <c>defer</c> (the default) only when the one thread that submits waits for completions
        /// (<c>SINGLE_ISSUER|DEFER_TASKRUN</c>, Linux 6.1); <c>coop</c> when the ring's thread next enters the kernel,
        /// any thread may submit (<c>COOP_TASKRUN|TASKRUN_FLAG</c>, 5.19); <c>none</c> at once, interrupting the thread.
        /// </summary>
        public static readonly Dictionary<string, uint> SetupFlags = new()
        {
            ["defer"] = SetupSingleIssuer | SetupDeferTaskrun,
            ["coop"] = SetupCoopTaskrun | SetupTaskrunFlag,
            ["none"] = 0,
        };

        public static int Run(int listenFd, byte* responses, string setup, uint flags)
        {
            if (!Setup(flags, out var error))
            {
                return Fail(error == 22
                    ? $"io_uring_setup: EINVAL with --setup={setup} (a kernel older than these flags? try --setup=none)"
                    : $"io_uring_setup: errno {error} (kernel.io_uring_disabled, or a seccomp profile that blocks it?)");
            }

            var buffers = new nint[1 << 16];
            var matched = new int[1 << 16];
            PrepareAccept(listenFd);
            Started($"uring (--setup={setup})");
            while (true)
            {
                Submit(wait: 1);
                var head = *s_cqHead;
                var tail = Volatile.Read(ref *s_cqTail);
                while (head != tail)
                {
                    var cqe = s_cqes + ((head & s_cqMask) * 16);
                    var data = *(ulong*)cqe;
                    var res = *(int*)(cqe + 8);
                    var cqeFlags = *(uint*)(cqe + 12);
                    head++;
                    if (data == AcceptTag)
                    {
                        if (res >= 0)
                        {
                            var buffer = (byte*)NativeMemory.Alloc(RecvBytes);
                            buffers[res] = (nint)buffer;
                            matched[res] = 0;
                            PrepareRecv(res, buffer);
                        }

                        if ((cqeFlags & CqeFMore) == 0)
                        {
                            PrepareAccept(listenFd);
                        }

                        continue;
                    }

                    var fd = (int)(data >> 8);
                    if ((data & 0xff) != RecvOp)
                    {
                        // A send's completion: the responses are small, a loopback socket takes them whole.
                        continue;
                    }

                    if (res > 0)
                    {
                        var requests = CountRequests((byte*)buffers[fd], res, ref matched[fd]);
                        while (requests > 0)
                        {
                            var now = Math.Min(requests, Batch);
                            PrepareSend(fd, responses, now * ResponseLength);
                            requests -= now;
                        }

                        PrepareRecv(fd, (byte*)buffers[fd]);
                    }
                    else
                    {
                        _ = Close(fd);
                        NativeMemory.Free((void*)buffers[fd]);
                        buffers[fd] = 0;
                    }
                }

                Volatile.Write(ref *s_cqHead, head);
            }
        }

        private static bool Setup(uint flags, out int error)
        {
            var p = stackalloc byte[120];
            new Span<byte>(p, 120).Clear();
            *(uint*)(p + 8) = flags;
            s_ring = (int)Syscall(SysSetup, 1024, (nint)p, 0, 0, 0, 0);
            if (s_ring < 0)
            {
                error = Marshal.GetLastPInvokeError();
                return false;
            }

            error = 0;
            var sqEntries = *(uint*)p;
            var cqEntries = *(uint*)(p + 4);
            var features = *(uint*)(p + 20);
            uint sqOff(int field) => *(uint*)(p + 40 + field);
            uint cqOff(int field) => *(uint*)(p + 80 + field);
            var sqSize = sqOff(24) + (sqEntries * 4);
            var cqSize = cqOff(20) + (cqEntries * 16);
            if ((features & FeatSingleMmap) != 0)
            {
                sqSize = cqSize = Math.Max(sqSize, cqSize);
            }

            var sq = Map(sqSize, 0);
            var cq = (features & FeatSingleMmap) != 0 ? sq : Map(cqSize, 0x8000000);
            s_sqes = Map(sqEntries * 64, 0x10000000);
            s_sqHead = (uint*)(sq + sqOff(0));
            s_sqTail = (uint*)(sq + sqOff(4));
            s_sqMask = *(uint*)(sq + sqOff(8));
            s_sqEntries = *(uint*)(sq + sqOff(12));
            s_sqArray = (uint*)(sq + sqOff(24));
            s_cqHead = (uint*)(cq + cqOff(0));
            s_cqTail = (uint*)(cq + cqOff(4));
            s_cqMask = *(uint*)(cq + cqOff(8));
            s_cqes = cq + cqOff(20);
            s_sqLocalTail = *s_sqTail;
            return true;
        }

        private static byte* Map(uint length, long offset)
        {
            var address = Mmap(null, length, 3, 0x01 | 0x8000, s_ring, offset);
            return address == (void*)-1 ? throw new IOException($"mmap of the ring: errno {Marshal.GetLastPInvokeError()}") : (byte*)address;
        }

        private static byte* NextSqe()
        {
            if (s_sqLocalTail - Volatile.Read(ref *s_sqHead) == s_sqEntries)
            {
                Submit(wait: 0);
            }

            var index = s_sqLocalTail & s_sqMask;
            var sqe = s_sqes + (index * 64);
            new Span<byte>(sqe, 64).Clear();
            s_sqArray[index] = index;
            s_sqLocalTail++;
            s_pending++;
            return sqe;
        }

        private static void PrepareAccept(int listenFd)
        {
            var sqe = NextSqe();
            sqe[0] = OpAccept;
            *(ushort*)(sqe + 2) = AcceptMultishot;
            *(int*)(sqe + 4) = listenFd;
            *(uint*)(sqe + 28) = 0x80000; // SOCK_CLOEXEC
            *(ulong*)(sqe + 32) = AcceptTag;
        }

        private static void PrepareRecv(int fd, byte* buffer)
        {
            var sqe = NextSqe();
            sqe[0] = OpRecv;
            *(int*)(sqe + 4) = fd;
            *(ulong*)(sqe + 16) = (ulong)buffer;
            *(uint*)(sqe + 24) = RecvBytes;
            *(ulong*)(sqe + 32) = ((ulong)fd << 8) | RecvOp;
        }

        private static void PrepareSend(int fd, byte* bytes, int length)
        {
            var sqe = NextSqe();
            sqe[0] = OpSend;
            *(int*)(sqe + 4) = fd;
            *(ulong*)(sqe + 16) = (ulong)bytes;
            *(uint*)(sqe + 24) = (uint)length;
            *(uint*)(sqe + 28) = 0x4000; // MSG_NOSIGNAL
            *(ulong*)(sqe + 32) = ((ulong)fd << 8) | SendOp;
        }

        /// <summary>One io_uring_enter: submits what is prepared and, with <paramref name="wait"/>, waits for a completion.</summary>
        private static void Submit(uint wait)
        {
            Volatile.Write(ref *s_sqTail, s_sqLocalTail);
            while (true)
            {
                var submitted = Syscall(SysEnter, s_ring, (nint)s_pending, (nint)wait, (nint)(wait > 0 ? EnterGetEvents : 0), 0, 0);
                if (submitted >= 0)
                {
                    s_pending -= (uint)submitted;
                    return;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno is not (4 or 11 or 16))
                {
                    throw new IOException($"io_uring_enter: errno {errno}");
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epfd, int op, int fd, void* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int EpollWait(int epfd, void* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4(int fd, void* address, uint* length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint Recv(int fd, void* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint Send(int fd, void* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
