using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// The acceptor as an event loop (no accept mutex): one epoll set holds the listening socket and every connection
/// this acceptor took, as an nginx worker's does, so a connection's reads never wake another thread.
/// </summary>
internal sealed partial class Acceptor
{
    private const int MaxEvents = 64;


    private readonly ConnectionTable _connections = new();

    /// <summary>
    /// Set once this acceptor has stopped taking connections: an event loop when its listening socket is closed (the
    /// loop goes on), a mutex acceptor when its thread exits.
    /// </summary>
    public TaskCompletionSource ListeningEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Connections this loop still serves.</summary>
    public int OpenConnections => _connections.Count;

    private unsafe void RunLoop(NativeConnectionSettings settings, StopSignal shutdown)
    {
        var events = stackalloc byte[MaxEvents * SocketCalls.EpollEventStride];
        var listening = true;
        int backoff = 0, failures = 0;
        long resumeAt = 0;
        NativeConnection? pending = null;
        try
        {
            while (true)
            {
                var timeout = resumeAt == 0 || pending is not null ? -1 : (int)Math.Max(0, resumeAt - Environment.TickCount64);
                var n = _waitSet.WaitMany(events, MaxEvents, timeout);
                if (n < 0)
                {
                    // epoll itself failing is not something a retry fixes quickly; log once, back off, go on.
                    metrics.AcceptError("epoll", _tags);
                    if (failures++ == 0)
                    {
                        AcceptStrategyLog.AcceptError(logger, id, endPoint, Libc.ErrnoName(-n), MaxBackoffMilliseconds);
                    }

                    Thread.Sleep(MaxBackoffMilliseconds);
                    continue;
                }

                var accept = false;
                for (var i = 0; i < n; i++)
                {
                    var token = AcceptorWaitSet.EventData(events, i, out var flags);
                    if (token == AcceptorWaitSet.ListenToken)
                    {
                        accept = true;
                    }
                    else if (token == AcceptorWaitSet.ShutdownToken)
                    {
                        return;
                    }
                    else if (token == AcceptorWaitSet.WakeToken)
                    {
                        _waitSet.ResetWake();
                    }
                    else if (token != AcceptorWaitSet.StopToken && _connections.Find(token) is { } connection)
                    {
                        Dispatch(connection, flags);
                    }
                }

                // After the wake-up was consumed above: a wake raised from here on stays pending for the next wait.
                if (pending is not null)
                {
                    if (disposing.IsCancellationRequested)
                    {
                        pending.Abort();
                        pending = null;
                    }
                    else if (accepted.TryWrite(pending))
                    {
                        pending = null;
                    }
                    else
                    {
                        WakeWhenWritable();
                    }
                }

                if (resumeAt != 0 && Environment.TickCount64 >= resumeAt && listening && !stop.IsSet && pending is null)
                {
                    resumeAt = 0;
                    _ = _waitSet.ResumeListening();
                }

                if (listening && stop.IsSet)
                {
                    listening = false;
                    _ = _waitSet.StopListening(stop.Fd);
                    listenSocket.Dispose();
                }
                else if (accept && listening && resumeAt == 0 && pending is null)
                {
                    _waitSet.CountWakeup();
                    if (!AcceptNative(settings, ref backoff, ref failures, out pending))
                    {
                        // Out of descriptors or memory: stop polling the socket (level-triggered, it would spin) and
                        // come back after the back-off, serving connections meanwhile.
                        _ = _waitSet.StopListening(-1);
                        resumeAt = Environment.TickCount64 + backoff;
                    }
                    else if (pending is not null)
                    {
                        // Kestrel is behind (or at its connection limit): take no more until it has room for this one,
                        // so they wait in the kernel queue where other acceptors and processes can still take them.
                        // Never a blocking write: this thread serves every connection it accepted. Room (or disposal)
                        // wakes the loop through the wait set.
                        _ = _waitSet.StopListening(-1);
                        resumeAt = Environment.TickCount64;
                        WakeWhenWritable();
                    }
                }

                // Unbinding waits for this: every connection taken has been handed to Kestrel (or given up at dispose).
                if (!listening && pending is null)
                {
                    ListeningEnded.TrySetResult();
                }
            }
        }
        finally
        {
            pending?.Abort();
            if (listening)
            {
                listenSocket.Dispose();
            }

            ListeningEnded.TrySetResult();

            // The listener is being disposed: Kestrel has already given up on whatever is still open.
            foreach (var connection in _connections.Snapshot())
            {
                connection.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException("The listener was disposed."));
            }
        }
    }

    /// <summary>Nothing expected throws here; whatever did ends that one connection, never the loop and its others.</summary>
    private void Dispatch(NativeConnection connection, uint flags)
    {
        try
        {
            connection.OnEvents(flags);
        }
        catch (Exception e)
        {
            metrics.AcceptError("unexpected", _tags);
            AcceptStrategyLog.HandoffFailed(logger, id, endPoint, e);
            connection.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException("The event loop failed serving this connection.", e));
        }
    }

    private void WakeWhenWritable()
    {
        // Completes when the channel has room, is completed, or the listener is disposed: each wakes the loop once.
        _ = accepted.WaitToWriteAsync(disposing).AsTask().ContinueWith(
            static (_, state) => ((AcceptorWaitSet)state!).Wake(),
            _waitSet,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>
    /// Takes one connection and offers it to Kestrel; false when the caller must back off for <paramref name="backoff"/>
    /// ms. <paramref name="pending"/> is a connection Kestrel had no room for.
    /// </summary>
    private unsafe bool AcceptNative(NativeConnectionSettings settings, ref int backoff, ref int failures, out NativeConnection? pending)
    {
        pending = null;
        var address = stackalloc byte[SocketCalls.SocketAddressBytes];
        var length = (uint)SocketCalls.SocketAddressBytes;
        var fd = SocketCalls.Accept4((int)listenSocket.SafeHandle.DangerousGetHandle(), address, &length, SocketCalls.SOCK_NONBLOCK | SocketCalls.SOCK_CLOEXEC);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            switch (errno)
            {
                case SocketCalls.EAGAIN:
                    // Another acceptor (or process) took it first.
                    metrics.SpuriousWakeup(_tags);
                    return true;
                case SocketCalls.EINTR:
                    return true;
                case SocketCalls.ECONNABORTED or SocketCalls.ECONNRESET or SocketCalls.EPROTO:
                    // That connection died in the queue; the next one is unaffected, so no back-off.
                    metrics.AcceptError(SocketError.ConnectionAborted.ToString(), _tags);
                    return true;
            }

            var error = errno is Libc.EMFILE or Libc.ENFILE ? SocketError.TooManyOpenSockets.ToString()
                : errno is Libc.ENOBUFS or Libc.ENOMEM ? SocketError.NoBufferSpaceAvailable.ToString()
                : Libc.ErrnoName(errno);
            metrics.AcceptError(error, _tags);
            backoff = NextBackoff(backoff);
            if (failures++ == 0)
            {
                AcceptStrategyLog.AcceptError(logger, id, endPoint, error, backoff);
            }

            return false;
        }

        if (failures > 0)
        {
            AcceptStrategyLog.AcceptRecovered(logger, id, endPoint, failures);
            (failures, backoff) = (0, 0);
        }

        NativeConnection connection;
        try
        {
            connection = new NativeConnection(fd, LocalEndPointOf(fd), RemoteEndPointOf(address, length), settings);
        }
        catch (Exception ex)
        {
            _ = Libc.Close(fd);
            AcceptStrategyLog.HandoffFailed(logger, id, endPoint, ex);
            return true;
        }

        connection.Start(_waitSet.EpollFd, _connections);
        Count(connection);
        if (!accepted.TryWrite(connection))
        {
            pending = connection;
        }

        return true;
    }

    private unsafe IPEndPoint LocalEndPointOf(int fd)
    {
        var bound = (IPEndPoint)endPoint;
        if (!bound.Address.Equals(IPAddress.Any) && !bound.Address.Equals(IPAddress.IPv6Any))
        {
            return bound;
        }

        // A wildcard listener: which of the host's addresses the client reached is the kernel's to say.
        var address = stackalloc byte[SocketCalls.SocketAddressBytes];
        var length = (uint)SocketCalls.SocketAddressBytes;
        return SocketCalls.GetSockName(fd, address, &length) == 0 ? RemoteEndPointOf(address, length) ?? bound : bound;
    }

    private static unsafe IPEndPoint? RemoteEndPointOf(byte* address, uint length)
    {
        var family = *(ushort*)address;
        var port = (address[2] << 8) | address[3];
        if (family == 2 && length >= 8)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(address + 4, 4)), port);
        }

        if (family == 10 && length >= 28)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(address + 8, 16), *(uint*)(address + 24)), port);
        }

        return null;
    }
}
