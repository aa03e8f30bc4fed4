using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// One acceptor thread: waits in <c>epoll_wait(2)</c> on its listening socket and the stop signal (inside the accept
/// mutex when there is one), then takes the connection with <see cref="Socket.AcceptAsync(CancellationToken)"/>, which
/// completes synchronously when a connection is queued, and hands it to Kestrel.
/// </summary>
/// <remarks>
/// <para>
/// Never a blocking <c>accept</c>: a thread blocked on a socket shared with other acceptors or processes can only be
/// woken by shutting the socket down for everyone. The listening socket is in the acceptor's own epoll set with
/// <c>EPOLLEXCLUSIVE</c>, so the kernel wakes one idle acceptor per connection, as it does for threads blocked in
/// <c>accept(2)</c> (Starlet's workers): acceptors that share a socket without a lock (ThunderingHerd) are not all
/// woken for each connection. With <c>poll(2)</c> they were, and eight worker processes spent 2.3× the CPU per
/// request of a serialised accept (see the README's worker measurements).
/// </para>
/// <para>
/// The accept itself goes through .NET so the connection's <see cref="Socket"/> is built from what the listener
/// already knows; wrapping a raw descriptor costs nine more system calls per connection. Each acceptor has its own
/// <see cref="Socket"/> (a <c>dup</c> of a shared descriptor) so .NET's per-socket operation queue never serialises
/// acceptors behind each other. Accept errors never end the loop.
/// </para>
/// </remarks>
internal sealed unsafe class Acceptor
{
    private const int FirstBackoffMilliseconds = 5;
    private const int MaxBackoffMilliseconds = 500;

    private readonly int _id;
    private readonly Socket _listenSocket;
    private readonly IAcceptMutex? _mutex;
    private readonly StopSignal _stop;
    private readonly CancellationToken _disposing;
    private readonly SocketConnectionContextFactory _connectionFactory;
    private readonly ChannelWriter<ConnectionContext> _accepted;
    private readonly bool _noDelay;
    private readonly EndPoint _endPoint;
    private readonly AcceptStrategyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TagList _tags;
    private readonly ConnectionCounter? _connections;
    private readonly int _epoll;

    public Acceptor(
        int id,
        Socket listenSocket,
        IAcceptMutex? mutex,
        StopSignal stop,
        SocketConnectionContextFactory connectionFactory,
        ChannelWriter<ConnectionContext> accepted,
        bool noDelay,
        AcceptStrategy strategy,
        EndPoint endPoint,
        AcceptStrategyMetrics metrics,
        ILogger logger,
        ConnectionCounter? connections,
        CancellationToken disposing)
    {
        _connections = connections;
        _id = id;
        _listenSocket = listenSocket;
        _mutex = mutex;
        _stop = stop;
        _disposing = disposing;
        _connectionFactory = connectionFactory;
        _accepted = accepted;
        _noDelay = noDelay;
        _endPoint = endPoint;
        _metrics = metrics;
        _logger = logger;
        _tags = AcceptStrategyMetrics.CreateTags(id, strategy, endPoint.ToString()!);
        _epoll = CreateEpoll((int)listenSocket.SafeHandle.DangerousGetHandle(), stop.Fd);
    }

    /// <summary>Releases the mutex and the epoll set; called once the thread has left <see cref="Run"/> (or never ran).</summary>
    public void DisposeResources()
    {
        _mutex?.Dispose();
        _ = Libc.Close(_epoll);
    }

    private static int CreateEpoll(int listenFd, int stopFd)
    {
        var epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}.");
        }

        if (!Add(epoll, listenFd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE) || !Add(epoll, stopFd, Libc.EPOLLIN))
        {
            var errno = Marshal.GetLastPInvokeError();
            _ = Libc.Close(epoll);
            throw new IOException(
                $"Adding the listening socket to an epoll set with EPOLLEXCLUSIVE failed (errno {errno}); Linux 4.5 or later is needed.");
        }

        return epoll;
    }

    /// <summary>True while this acceptor waits for a mutex that stopping cannot interrupt (a blocking <c>flock</c>).</summary>
    public bool InUncancellableWait => _inUncancellableWait;

    private volatile bool _inUncancellableWait;

    public void Run()
    {
        var backoff = 0;
        var failures = 0;

        while (!_stop.IsSet)
        {
            Socket? socket;
            SocketError error;
            if (_mutex is null)
            {
                socket = AcceptOne(out error);
            }
            else
            {
                var waitStart = Stopwatch.GetTimestamp();
                if (!TryEnterMutex(out var mutexError))
                {
                    if (mutexError is null)
                    {
                        break;
                    }

                    // The lock file went away or the system is out of locks: a failed accept as far as callers can tell.
                    _metrics.AcceptError("mutex", _tags);
                    backoff = backoff == 0 ? FirstBackoffMilliseconds : Math.Min(backoff * 2, MaxBackoffMilliseconds);
                    if (failures++ == 0)
                    {
                        AcceptStrategyLog.AcceptError(_logger, _id, _endPoint, mutexError, backoff);
                    }

                    if (_stop.Wait(backoff))
                    {
                        break;
                    }

                    continue;
                }

                if (_metrics.MutexWaitEnabled)
                {
                    _metrics.MutexWaited(Stopwatch.GetElapsedTime(waitStart), _tags);
                }

                try
                {
                    socket = AcceptOne(out error);
                }
                finally
                {
                    _mutex.Exit();
                }
            }

            if (socket is not null)
            {
                if (failures > 0)
                {
                    AcceptStrategyLog.AcceptRecovered(_logger, _id, _endPoint, failures);
                    failures = 0;
                    backoff = 0;
                }

                HandOff(socket);
                continue;
            }

            if (_stop.IsSet)
            {
                break;
            }

            if (error is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                // That connection died in the queue; the next one is unaffected, so no back-off.
                _metrics.AcceptError(error.ToString(), _tags);
                continue;
            }

            // Out of descriptors (EMFILE, ENFILE) or buffers (ENOBUFS, ENOMEM): the pending connection stays queued,
            // so retrying at once would spin. Log the first failure of an episode, back off, resume.
            _metrics.AcceptError(error.ToString(), _tags);
            backoff = backoff == 0 ? FirstBackoffMilliseconds : Math.Min(backoff * 2, MaxBackoffMilliseconds);
            if (failures++ == 0)
            {
                AcceptStrategyLog.AcceptError(_logger, _id, _endPoint, error.ToString(), backoff);
            }

            if (_stop.Wait(backoff))
            {
                break;
            }
        }
    }

    /// <summary>Takes the accept mutex; false with a null error when stopping.</summary>
    private bool TryEnterMutex(out string? error)
    {
        error = null;
        if (_mutex!.IsCancellable)
        {
            return _mutex.TryEnter(_stop.Token);
        }

        // Flagged before stopping is checked inside TryEnter, so an unbinding listener either sees the flag or sees
        // this acceptor return.
        _inUncancellableWait = true;
        try
        {
            return _mutex.TryEnter(_stop.Token);
        }
        catch (IOException e)
        {
            error = e.Message;
            return false;
        }
        finally
        {
            _inUncancellableWait = false;
        }
    }

    /// <summary>Waits for a connection and takes it; null when stopping or on an error.</summary>
    private Socket? AcceptOne(out SocketError error)
    {
        if (!WaitReadable(out var errno))
        {
            error = errno == 0 ? SocketError.OperationAborted : SocketError.SocketError;
            return null;
        }

        try
        {
            var accept = _listenSocket.AcceptAsync(_stop.Token);
            if (!accept.IsCompleted)
            {
                // Another acceptor (or process) took the connection this wake-up was for. The accept stays queued in
                // .NET's epoll engine and completes with a later connection, or is cancelled by the stop signal.
                _metrics.SpuriousWakeup(_tags);
            }

            error = SocketError.Success;
            return accept.IsCompleted ? accept.Result : accept.AsTask().GetAwaiter().GetResult();
        }
        catch (SocketException e)
        {
            error = e.SocketErrorCode;
            return null;
        }
        catch (OperationCanceledException)
        {
            error = SocketError.OperationAborted;
            return null;
        }
    }

    private static bool Add(int epoll, int fd, uint events)
    {
        var ev = stackalloc byte[Libc.EpollEventBytes];
        new Span<byte>(ev, Libc.EpollEventBytes).Clear();
        *(uint*)ev = events;
        return Libc.EpollCtl(epoll, Libc.EPOLL_CTL_ADD, fd, ev) == 0;
    }

    /// <summary>Blocks until the listening socket is readable (true) or the stop signal fires or epoll fails (false).</summary>
    private bool WaitReadable(out int errno)
    {
        // Room for both descriptors' events on any ABI; which one fired does not matter: the stop signal is checked.
        var events = stackalloc byte[2 * Libc.EpollEventBytes];
        while (true)
        {
            if (Libc.EpollWait(_epoll, events, 2, -1) >= 0)
            {
                errno = 0;
                return !_stop.IsSet;
            }

            errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
            {
                return false;
            }
        }
    }

    private void HandOff(Socket socket)
    {
        ConnectionContext? connection = null;
        try
        {
            if (_noDelay)
            {
                socket.NoDelay = true;
            }

            connection = _connectionFactory.Create(socket);
            _metrics.ConnectionAccepted(_tags);
            _connections?.Accepted(connection);

            if (!_accepted.TryWrite(connection))
            {
                // Kestrel is behind (or at its connection limit): stop taking connections until it catches up, so
                // they wait in the kernel queue where other acceptors and processes can still take them.
                _accepted.WriteAsync(connection, _disposing).AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception ex)
        {
            if (connection is null)
            {
                socket.Dispose();
            }
            else
            {
                connection.Abort();
            }

            if (!_disposing.IsCancellationRequested)
            {
                AcceptStrategyLog.HandoffFailed(_logger, _id, _endPoint, ex);
            }
        }
    }
}
