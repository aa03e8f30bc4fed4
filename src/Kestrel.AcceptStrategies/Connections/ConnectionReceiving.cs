using System.IO.Pipelines;
using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// A connection's reads: on the event loop's thread when epoll reports input (and once right after accept), until a
/// short read (edge-triggered, as nginx reads) or a full input pipe, whose resumption reads again from the thread pool.
/// </summary>
internal sealed class ConnectionReceiving(NativeConnection connection, PipeWriter writer, long pauseThreshold)
{
    // The loop and a resumed flush take turns; the FIN, a reset or the connection's shutdown end reading once.
    private readonly object _gate = new();
    private bool _ended;
    private bool _paused;

    /// <summary>
    /// Reads until the socket has nothing more, flushing to Kestrel whenever the pipe reaches its limit
    /// (<c>MaxReadBufferSize</c>): a full pipe pauses reading until Kestrel catches up.
    /// </summary>
    public void Receive()
    {
        lock (_gate)
        {
            while (!_ended && !_paused)
            {
                var (received, full, end, error) = ReadAvailable();
                if (received)
                {
                    var flush = writer.FlushAsync();
                    if (!flush.IsCompleted)
                    {
                        _paused = true;
                        ResumeAfter(flush.AsTask());
                    }
                    else
                    {
                        var result = flush.GetAwaiter().GetResult();
                        end |= result.IsCompleted || result.IsCanceled;
                    }
                }

                if (end)
                {
                    EndLocked(error);
                }

                if (!full)
                {
                    return;
                }
            }
        }
    }

    /// <summary>One pass of reads into the pipe: until a short read, EAGAIN, the end, or the pipe's limit (full).</summary>
    private unsafe (bool Received, bool Full, bool End, Exception? Error) ReadAvailable()
    {
        var received = false;
        var added = false;
        try
        {
            connection.Descriptor.DangerousAddRef(ref added);
            while (true)
            {
                var memory = writer.GetMemory(NativeConnectionSettings.MinimumReadSize);
                nint n;
                fixed (byte* p = memory.Span)
                {
                    n = SocketCalls.Recv(connection.Descriptor.Fd, p, (nuint)memory.Length, 0);
                }

                if (n > 0)
                {
                    writer.Advance((int)n);
                    received = true;
                    if (n < memory.Length)
                    {
                        // A short read emptied the socket's queue; the next arrival is a new edge (as nginx reads).
                        return (received, false, false, null);
                    }

                    if (pauseThreshold > 0 && writer.UnflushedBytes >= pauseThreshold)
                    {
                        return (received, true, false, null);
                    }

                    continue;
                }

                if (n == 0)
                {
                    return (received, false, true, null);
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == SocketCalls.EINTR)
                {
                    continue;
                }

                return errno == SocketCalls.EAGAIN
                    ? (received, false, false, null)
                    : (received, false, true, SocketErrors.ToException(errno));
            }
        }
        catch (ObjectDisposedException)
        {
            return (received, false, true, null);
        }
        finally
        {
            if (added)
            {
                connection.Descriptor.DangerousRelease();
            }
        }
    }

    private void ResumeAfter(Task<FlushResult> flush)
    {
        _ = flush.ContinueWith(
            static (task, state) =>
            {
                var receiving = (ConnectionReceiving)state!;
                var stop = task.IsFaulted || task.IsCanceled || task.Result.IsCompleted || task.Result.IsCanceled;
                lock (receiving._gate)
                {
                    receiving._paused = false;
                    if (stop)
                    {
                        receiving.EndLocked(null);
                        return;
                    }
                }

                // Edge-triggered: whatever arrived while paused raised no new event, so read it now.
                receiving.Receive();
            },
            this,
            CancellationToken.None,
            TaskContinuationOptions.DenyChildAttach,
            TaskScheduler.Default);
    }

    /// <summary>Stops reading for good (the connection is shutting down): Kestrel's input completes with <paramref name="reason"/>.</summary>
    public void End(Exception? reason)
    {
        lock (_gate)
        {
            EndLocked(reason);
        }
    }

    private void EndLocked(Exception? error)
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        writer.Complete(connection.ShutdownReason ?? error);
        connection.FireConnectionClosed();
    }
}
