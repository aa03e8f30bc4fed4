using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Connections;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// One acceptor thread. Without an accept mutex it is an event loop serving its own connections (Acceptor.Loop.cs).
/// With one, it waits in <c>epoll_wait(2)</c> on its listening socket and the stop signal inside the mutex, takes the
/// connection with <see cref="Socket.AcceptAsync(CancellationToken)"/> (synchronous when one is queued) and hands
/// Kestrel a socket connection.
/// </summary>
/// <remarks>
/// <para>
/// That accept goes through .NET so the connection's <see cref="Socket"/> is built from what the listener already
/// knows; wrapping a raw descriptor costs nine more system calls per connection. Each acceptor has its own
/// <see cref="Socket"/> (a <c>dup</c> of a shared descriptor) so .NET's per-socket operation queue never serialises
/// acceptors behind each other. Accept errors never end the loop; see <see cref="AcceptorWaitSet"/> for the wait.
/// </para>
/// </remarks>
internal sealed partial class Acceptor(
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
    IAcceptedConnectionObserver? observer,
    CancellationToken disposing,
    NativeConnectionSettings? connections = null,
    StopSignal? shutdown = null) : IDisposable
{
    private const int FirstBackoffMilliseconds = 5;
    private const int MaxBackoffMilliseconds = 500;

    private readonly TagList _tags = metrics.CreateTags(id, strategy, endPoint.ToString()!);
    private readonly AcceptorWaitSet _waitSet = new((int)listenSocket.SafeHandle.DangerousGetHandle(), stop.Fd, strategy, shutdown?.Fd ?? -1);

    private static int NextBackoff(int backoff) =>
        backoff == 0 ? FirstBackoffMilliseconds : Math.Min(backoff * 2, MaxBackoffMilliseconds);

    /// <summary>Releases the mutex and the epoll set; called once the thread has left <see cref="Run"/> (or never ran).</summary>
    public void Dispose()
    {
        mutex?.Dispose();
        _waitSet.Dispose();
    }

    // Written by this acceptor's thread only; read by a worker's heartbeat.
    private long _acceptedCount;

    /// <summary>Connections this acceptor has handed to Kestrel.</summary>
    public long Accepted => Volatile.Read(ref _acceptedCount);

    public void Run()
    {
        if (connections is not null)
        {
            RunLoop(connections, shutdown!);
            return;
        }

        int backoff = 0, failures = 0, faults = 0;
        while (!stop.IsSet)
        {
            try
            {
                if (!AcceptNext(ref backoff, ref failures, ref faults))
                {
                    break;
                }
            }
            catch (Exception e)
            {
                // Nothing expected throws here; whatever did must not end the process (an unhandled exception on this
                // thread would) nor leave the listener unable to unbind. Logged once per episode, then retried.
                metrics.AcceptError("unexpected", _tags);
                backoff = NextBackoff(backoff);
                if (faults++ == 0)
                {
                    AcceptStrategyLog.AcceptorFailed(logger, id, endPoint, backoff, e);
                }

                if (stop.Wait(backoff))
                {
                    break;
                }
            }
        }
    }

    /// <summary>One wait, accept and hand-off (or one failure and its back-off); false when the acceptor must stop.</summary>
    private bool AcceptNext(ref int backoff, ref int failures, ref int faults)
    {
        Socket? socket;
        SocketError error;
        if (mutex is null)
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
                    return false;
                }

                // The lock file went away or the system is out of locks: a failed accept as far as callers can tell.
                metrics.AcceptError("mutex", _tags);
                backoff = NextBackoff(backoff);
                if (failures++ == 0)
                {
                    AcceptStrategyLog.AcceptError(logger, id, endPoint, mutexError, backoff);
                }

                return !stop.Wait(backoff);
            }

            if (metrics.MutexWaitEnabled)
            {
                metrics.MutexWaited(Stopwatch.GetElapsedTime(waitStart), _tags);
            }

            try
            {
                socket = AcceptOne(out error);
            }
            finally
            {
                mutex.Exit();
            }
        }

        if (socket is not null)
        {
            if (failures + faults > 0)
            {
                AcceptStrategyLog.AcceptRecovered(logger, id, endPoint, failures + faults);
                (failures, faults, backoff) = (0, 0, 0);
            }

            HandOff(socket);
            return true;
        }

        if (stop.IsSet)
        {
            return false;
        }

        if (error is SocketError.ConnectionAborted or SocketError.ConnectionReset)
        {
            // That connection died in the queue; the next one is unaffected, so no back-off.
            metrics.AcceptError(error.ToString(), _tags);
            return true;
        }

        // Out of descriptors (EMFILE, ENFILE) or buffers (ENOBUFS, ENOMEM): the pending connection stays queued,
        // so retrying at once would spin. Log the first failure of an episode, back off, resume.
        metrics.AcceptError(error.ToString(), _tags);
        backoff = NextBackoff(backoff);
        if (failures++ == 0)
        {
            AcceptStrategyLog.AcceptError(logger, id, endPoint, error.ToString(), backoff);
        }

        return !stop.Wait(backoff);
    }

    /// <summary>Waits for a connection and takes it; null when stopping or on an error.</summary>
    private Socket? AcceptOne(out SocketError error)
    {
        var errno = _waitSet.Wait();
        if (errno != 0 || stop.IsSet)
        {
            error = errno == 0 ? SocketError.OperationAborted : SocketError.SocketError;
            return null;
        }

        try
        {
            var accept = listenSocket.AcceptAsync(stop.Token);
            if (!accept.IsCompleted)
            {
                // Another acceptor (or process) took the connection this wake-up was for. The accept stays queued in
                // .NET's epoll engine and completes with a later connection, or is cancelled by the stop signal.
                metrics.SpuriousWakeup(_tags);
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

    private void HandOff(Socket socket)
    {
        ConnectionContext connection;
        try
        {
            if (noDelay)
            {
                socket.NoDelay = true;
            }

            connection = connectionFactory.Create(socket);
        }
        catch (Exception ex)
        {
            socket.Dispose();
            if (!disposing.IsCancellationRequested)
            {
                AcceptStrategyLog.HandoffFailed(logger, id, endPoint, ex);
            }

            return;
        }

        Deliver(connection);
    }

    /// <summary>Counts a new connection and queues it for Kestrel's accept loop (aborting it if that fails).</summary>
    private void Deliver(ConnectionContext connection)
    {
        try
        {
            Count(connection);
            if (!accepted.TryWrite(connection))
            {
                // Kestrel is behind (or at its connection limit): stop taking connections until it catches up, so
                // they wait in the kernel queue where other acceptors and processes can still take them.
                accepted.WriteAsync(connection, disposing).AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception ex)
        {
            connection.Abort();
            if (!disposing.IsCancellationRequested)
            {
                AcceptStrategyLog.HandoffFailed(logger, id, endPoint, ex);
            }
        }
    }

    private void Count(ConnectionContext connection)
    {
        metrics.ConnectionAccepted(_tags);
        Volatile.Write(ref _acceptedCount, _acceptedCount + 1);
        observer?.Accepted(connection);
    }
}
