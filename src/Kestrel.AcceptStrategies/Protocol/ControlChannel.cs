using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>
/// One end of the <c>SOCK_SEQPACKET</c> socket pair between the supervisor and a worker: short text messages with
/// their boundaries kept. The worker's end is inherited; when the supervisor dies, the worker reads end-of-file.
/// </summary>
internal sealed class ControlChannel : IDisposable
{
    /// <summary>
    /// The longest message: a heartbeat with a count for each of up to 1,024 acceptors per endpoint fits, at realistic
    /// counts; one that would not is sent without them (WorkerHeartbeat).
    /// </summary>
    public const int MaxMessageBytes = 64 * 1024;

    private readonly Socket _socket;

    // One byte more than a message may have: SOCK_SEQPACKET drops what does not fit without an error, so a receive that
    // fills it was cut short and is refused rather than parsed.
    private readonly byte[] _receiveBuffer = new byte[MaxMessageBytes + 1];
    private readonly object _sendLock = new();

    public ControlChannel(int fd) => _socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));

    public int Fd => (int)_socket.SafeHandle.DangerousGetHandle();

    /// <summary>Creates a connected pair, both ends close-on-exec.</summary>
    public static unsafe (ControlChannel Supervisor, ControlChannel Worker) CreatePair()
    {
        var fds = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_CLOEXEC, 0, fds) != 0)
        {
            throw DescriptorLimit.Failure("socketpair", Marshal.GetLastPInvokeError());
        }

        return (new ControlChannel(fds[0]), new ControlChannel(fds[1]));
    }

    /// <summary>What <see cref="ReceiveAsync"/> returns for a message longer than <see cref="MaxMessageBytes"/>: no message parses as it.</summary>
    public const string TruncatedMessage = "(truncated)";

    /// <summary>Sends one message; false when the other end is gone.</summary>
    public bool TrySend(string message)
    {
        try
        {
            lock (_sendLock)
            {
                _socket.Send(Encoding.ASCII.GetBytes(message));
            }

            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>The next message, or null once the other end has closed (or died), this end was disposed, or the wait was cancelled.</summary>
    public async Task<string?> ReceiveAsync(CancellationToken cancellationToken)
    {
        try
        {
            var read = await _socket.ReceiveAsync(_receiveBuffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            return read == 0 ? null : read > MaxMessageBytes ? TruncatedMessage : Encoding.ASCII.GetString(_receiveBuffer, 0, read);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Closed, disposed (the worker exited) or no longer listened to: no more messages either way.
            return null;
        }
    }

    public void Dispose() => _socket.Dispose();
}
