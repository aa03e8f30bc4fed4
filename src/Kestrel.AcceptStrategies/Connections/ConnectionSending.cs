using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// A connection's send loop. Its reads of the output pipe resume inline, so the thread that flushes a response sends
/// it; only a full socket buffer makes it wait, for the loop's <c>EPOLLOUT</c>, and then the loop's thread sends the rest.
/// </summary>
internal sealed class ConnectionSending(NativeConnection connection)
{
    private readonly object _gate = new();
    private TaskCompletionSource? _writable;
    private bool _writableArmed;

    // EPOLLOUT (or a shutdown) came while no send was waiting: the next wait returns at once, so an edge that fell
    // between a failed send and its wait is not lost. Never set again by the wait itself, so a full socket never spins.
    private bool _writableSeen;

    public async Task RunAsync()
    {
        Exception? error = null;
        var output = connection.Output;
        try
        {
            while (true)
            {
                var result = await output.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break;
                }

                var buffer = result.Buffer;
                while (!buffer.IsEmpty)
                {
                    var sent = TrySend(buffer, out var errno);
                    if (sent > 0)
                    {
                        buffer = buffer.Slice(sent);
                    }
                    else if (errno == SocketCalls.EAGAIN)
                    {
                        await WaitWritableAsync().ConfigureAwait(false);
                    }
                    else if (errno != SocketCalls.EINTR)
                    {
                        throw SocketErrors.ToException(errno);
                    }
                }

                output.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            connection.Shutdown(error);
            output.Complete(error);
        }
    }

    /// <summary>The loop saw the socket writable (or failed): a waiting send tries again.</summary>
    public void OnWritable()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            waiter = _writable;
            _writable = null;
            _writableSeen = waiter is null;
        }

        // Completed inline: the rest of the send is the transport's own code, safe on the loop's thread.
        waiter?.TrySetResult();
    }

    private Task WaitWritableAsync()
    {
        var waiter = new TaskCompletionSource();
        bool arm;
        lock (_gate)
        {
            if (_writableSeen)
            {
                _writableSeen = false;
                return Task.CompletedTask;
            }

            _writable = waiter;
            arm = !_writableArmed;
            _writableArmed = true;
        }

        // Edge-triggered EPOLLOUT, added the first time a send fills the socket. Re-registering re-checks readiness,
        // so room that appeared since the failed send still raises an event; afterwards every drain of a full buffer does.
        if (arm && !connection.Register(SocketCalls.EPOLL_CTL_MOD, SocketCalls.EPOLLIN | SocketCalls.EPOLLRDHUP | SocketCalls.EPOLLOUT | SocketCalls.EPOLLET, out var errno))
        {
            waiter.TrySetException(errno == 0 ? new ObjectDisposedException("connection") : SocketErrors.ToException(errno));
        }

        return waiter.Task;
    }

    private unsafe long TrySend(in ReadOnlySequence<byte> buffer, out int errno)
    {
        var descriptor = connection.Descriptor;
        var added = false;
        try
        {
            descriptor.DangerousAddRef(ref added);
            nint n;
            if (buffer.IsSingleSegment)
            {
                var span = buffer.FirstSpan;
                fixed (byte* p = span)
                {
                    n = SocketCalls.Send(descriptor.Fd, p, (nuint)span.Length, SocketCalls.MSG_NOSIGNAL);
                }
            }
            else
            {
                n = SendSegments(descriptor.Fd, buffer);
            }

            errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
            return n;
        }
        catch (ObjectDisposedException)
        {
            errno = SocketCalls.EPIPE;
            return -1;
        }
        finally
        {
            if (added)
            {
                descriptor.DangerousRelease();
            }
        }
    }

    private static unsafe nint SendSegments(int fd, in ReadOnlySequence<byte> buffer)
    {
        var vectors = stackalloc SocketCalls.IoVector[SocketCalls.MaxIoVectors];
        var handles = default(PinnedSegments);
        var count = 0;
        try
        {
            foreach (var segment in buffer)
            {
                if (segment.IsEmpty)
                {
                    continue;
                }

                handles[count] = segment.Pin();
                vectors[count] = new SocketCalls.IoVector { Base = handles[count].Pointer, Length = (nuint)segment.Length };
                if (++count == SocketCalls.MaxIoVectors)
                {
                    break;
                }
            }

            var message = new SocketCalls.MessageHeader { IoVectors = vectors, IoVectorCount = (nuint)count };
            return SocketCalls.SendMsg(fd, &message, SocketCalls.MSG_NOSIGNAL);
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                handles[i].Dispose();
            }
        }
    }

    [InlineArray(SocketCalls.MaxIoVectors)]
    private struct PinnedSegments
    {
        private MemoryHandle _element;
    }
}
