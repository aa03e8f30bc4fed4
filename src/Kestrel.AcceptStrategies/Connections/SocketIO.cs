using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// One non-blocking <c>recv</c> or <c>send</c> on a connection's descriptor, as Kestrel's <c>SocketReceiver</c> and
/// <c>SocketSender</c> are leaves of its <c>SocketConnection</c>: they take the descriptor and a buffer, return what the
/// kernel said, and know nothing of the connection.
/// </summary>
internal static unsafe class SocketIO
{
    /// <summary>Bytes received (0 at the peer's FIN), or -1 with <paramref name="errno"/> (<c>EBADF</c> once the descriptor is closed).</summary>
    public static int Receive(ConnectionDescriptor descriptor, Span<byte> buffer, out int errno)
    {
        var added = false;
        try
        {
            descriptor.DangerousAddRef(ref added);
            nint n;
            fixed (byte* p = buffer)
            {
                n = Libc.Recv(descriptor.Fd, p, (nuint)buffer.Length, 0);
            }

            errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
            return (int)n;
        }
        catch (ObjectDisposedException)
        {
            errno = Libc.EBADF;
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

    /// <summary>Bytes sent from the start of <paramref name="buffer"/>, or -1 with <paramref name="errno"/> (<c>EBADF</c> once closed).</summary>
    public static long Send(ConnectionDescriptor descriptor, in ReadOnlySequence<byte> buffer, out int errno)
    {
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
                    n = Libc.Send(descriptor.Fd, p, (nuint)span.Length, Libc.MSG_NOSIGNAL);
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
            errno = Libc.EBADF;
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

    private static nint SendSegments(int fd, in ReadOnlySequence<byte> buffer)
    {
        var vectors = stackalloc Libc.IoVector[Libc.MaxIoVectors];
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
                vectors[count] = new Libc.IoVector { Base = handles[count].Pointer, Length = (nuint)segment.Length };
                if (++count == Libc.MaxIoVectors)
                {
                    break;
                }
            }

            var message = new Libc.MessageHeader { IoVectors = vectors, IoVectorCount = (nuint)count };
            return Libc.SendMsg(fd, &message, Libc.MSG_NOSIGNAL);
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                handles[i].Dispose();
            }
        }
    }

    [InlineArray(Libc.MaxIoVectors)]
    private struct PinnedSegments
    {
        private MemoryHandle _element;
    }
}
