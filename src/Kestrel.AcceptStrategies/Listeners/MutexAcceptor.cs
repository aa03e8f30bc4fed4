using System.Diagnostics;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// A Serialized acceptor: takes the accept mutex, waits in <c>poll(2)</c> on its listening socket and the stop signal,
/// takes one connection with <see cref="Socket.AcceptAsync(CancellationToken)"/>, releases the mutex, and hands Kestrel a
/// socket connection (Kestrel's own <c>SocketConnection</c>, built as Kestrel's listener builds it). Only the mutex
/// holder waits on the socket, so nothing herds.
/// </summary>
/// <remarks>
/// The accept goes through .NET so the connection's <see cref="Socket"/> is built from what the listener already knows;
/// wrapping a raw descriptor costs nine more system calls per connection. Each acceptor has its own
/// <see cref="Socket"/> (a <c>dup</c> of a shared descriptor) so .NET's per-socket operation queue never serialises
/// acceptors behind each other. Accept errors never end the loop.
/// </remarks>
internal sealed unsafe class MutexAcceptor(
    int id, Socket listenSocket, IAcceptMutex mutex, SocketConnectionContextFactory connectionFactory, bool noDelay, AcceptorContext context)
    : Acceptor(id, listenSocket, context)
{
    private volatile bool _inUncancellableWait;

    public override bool InUncancellableWait => _inUncancellableWait;

    protected override bool Run()
    {
        var stop = Context.Stop;
        while (!stop.IsSet)
        {
            try
            {
                if (!AcceptNext())
                {
                    break;
                }
            }
            catch (Exception e)
            {
                // Nothing expected throws here; whatever did must not end the process (an unhandled exception on this
                // thread would) nor leave the listener unable to unbind. Logged once per episode, then retried.
                if (stop.Wait(AcceptorFaulted(e)))
                {
                    break;
                }
            }
        }

        ListeningEnded.TrySetResult();
        return true;
    }

    public override void Dispose() => mutex.Dispose();

    /// <summary>One mutex turn: wait, accept and hand off (or one failure and its back-off); false when stopping.</summary>
    private bool AcceptNext()
    {
        var waitStart = Stopwatch.GetTimestamp();
        if (!TryEnterMutex(out var mutexError))
        {
            // The lock file went away or the system is out of locks: a failed accept as far as callers can tell.
            return mutexError is not null && !Context.Stop.Wait(AcceptFailed("mutex", mutexError));
        }

        if (Context.Metrics.MutexWaitEnabled)
        {
            Context.Metrics.MutexWaited(Stopwatch.GetElapsedTime(waitStart), Tags);
        }

        Socket? socket;
        SocketError error;
        try
        {
            socket = AcceptOne(out error);
        }
        finally
        {
            mutex.Exit();
        }

        if (socket is not null)
        {
            AcceptSucceeded();
            HandOff(socket);
            return true;
        }

        if (Context.Stop.IsSet)
        {
            return false;
        }

        if (error is SocketError.ConnectionAborted or SocketError.ConnectionReset)
        {
            // That connection died in the queue; the next one is unaffected, so no back-off.
            ConnectionLostInQueue();
            return true;
        }

        // Out of descriptors (EMFILE, ENFILE) or buffers (ENOBUFS, ENOMEM): the pending connection stays queued, so
        // retrying at once would spin.
        return !Context.Stop.Wait(AcceptFailed(error.ToString()));
    }

    /// <summary>Takes the accept mutex; false with a null error when stopping.</summary>
    private bool TryEnterMutex(out string? error)
    {
        error = null;
        if (mutex.IsCancellable)
        {
            return mutex.TryEnter(Context.Stop.Token);
        }

        // Flagged before stopping is checked inside TryEnter, so an unbinding listener either sees the flag or sees
        // this acceptor return.
        _inUncancellableWait = true;
        try
        {
            return mutex.TryEnter(Context.Stop.Token);
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
        if (!WaitReadable())
        {
            error = Context.Stop.IsSet ? SocketError.OperationAborted : SocketError.SocketError;
            return null;
        }

        try
        {
            var accept = ListenSocket.AcceptAsync(Context.Stop.Token);
            if (!accept.IsCompleted)
            {
                // Another process took the connection this wake-up was for (a mutex held elsewhere briefly overlaps a
                // poll that already returned). The accept stays queued in .NET's engine until a later connection or stop.
                SpuriousWakeup();
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

    /// <summary>Blocks until the listening socket has a connection (true) or the stop signal is set or poll fails (false).</summary>
    private bool WaitReadable()
    {
        var fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = (int)ListenSocket.SafeHandle.DangerousGetHandle(), Events = Libc.POLLIN };
        fds[1] = new PollFd { Fd = Context.Stop.Fd, Events = Libc.POLLIN };
        while (true)
        {
            if (Libc.Poll(fds, 2, -1) >= 0)
            {
                return !Context.Stop.IsSet;
            }

            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Libc.EINTR)
            {
                return false;
            }
        }
    }

    private void HandOff(Socket socket)
    {
        ConnectionContext connection;
        try
        {
            // TCP only: a Unix socket has no Nagle to turn off.
            if (noDelay && socket.AddressFamily != AddressFamily.Unix)
            {
                socket.NoDelay = true;
            }

            connection = connectionFactory.Create(socket);
        }
        catch (Exception ex)
        {
            socket.Dispose();
            if (!Context.Disposing.IsCancellationRequested)
            {
                AcceptStrategyLog.HandoffFailed(Context.Logger, Id, Context.EndPoint, ex);
            }

            return;
        }

        try
        {
            Count(connection);
            if (!Context.Accepted.TryWrite(connection))
            {
                // Kestrel is behind (or at its connection limit): stop taking connections until it catches up, so they
                // wait in the kernel queue where other acceptors and processes can still take them.
                Context.Accepted.WriteAsync(connection, Context.Disposing).AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception ex)
        {
            connection.Abort();
            if (!Context.Disposing.IsCancellationRequested)
            {
                AcceptStrategyLog.HandoffFailed(Context.Logger, Id, Context.EndPoint, ex);
            }
        }
    }
}
