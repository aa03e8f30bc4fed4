using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// A client connection that speaks raw bytes: requests go out as given (one byte per write, see
/// <see cref="SendAsync"/>), responses are compared character by character. Every read is bounded by
/// <see cref="Deadline.Default"/>.
/// </summary>
public sealed class RawConnection : IDisposable
{
    private readonly Stream _stream;
    private readonly Socket? _socket;

    private RawConnection(Stream stream, Socket? socket)
    {
        _stream = stream;
        _socket = socket;
    }

    /// <summary>The connection's stream, for bulk writes and reads of a test's own.</summary>
    public Stream Stream => _stream;

    /// <summary>The client socket (not available for a connection made with <see cref="Over"/>).</summary>
    public Socket Socket => _socket ?? throw new InvalidOperationException("This connection has no socket.");

    /// <summary>Connects to <paramref name="endPoint"/>, bounded by <see cref="Deadline.Default"/>.</summary>
    public static async Task<RawConnection> ConnectAsync(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint).OrTimeout();
            return new RawConnection(new NetworkStream(socket, ownsSocket: true), socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A connection over any stream, for testing the harness's own matching.</summary>
    public static RawConnection Over(Stream stream) => new(stream, socket: null);

    /// <summary>
    /// Sends the lines joined by CRLF, one byte per write, so that the server gets the request in many small pieces
    /// (as from a slow client) and has to put it together across reads.
    /// </summary>
    public async Task SendAsync(params string[] lines)
    {
        var bytes = Encoding.Latin1.GetBytes(string.Join("\r\n", lines));
        for (var i = 0; i < bytes.Length; i++)
        {
            await _stream.WriteAsync(bytes.AsMemory(i, 1)).OrTimeout();
        }
    }

    /// <summary>
    /// Reads exactly as many characters as the lines joined by CRLF make and compares them; a line
    /// <see cref="Http1.AnyDate"/> matches any real Date line.
    /// </summary>
    public async Task ExpectAsync(params string[] lines)
    {
        var expected = string.Join("\r\n", lines);
        var received = await ReadAsync(Http1.ReceivedLength(expected), expected);
        Assert.Equal(expected, Http1.MaskDates(expected, received));
    }

    /// <summary><see cref="ExpectAsync"/>, then the end of the stream (a FIN: a reset fails).</summary>
    public async Task ExpectThenEndAsync(params string[] lines)
    {
        await ExpectAsync(lines);
        var after = new byte[256];
        var count = await _stream.ReadAsync(after).OrTimeout();
        Assert.True(count == 0, $"Expected the end of the stream, received \"{Encoding.Latin1.GetString(after, 0, count)}\".");
    }

    /// <summary>The connection closes (FIN or RST) without sending anything more.</summary>
    public async Task ExpectClosedAsync()
    {
        var after = new byte[256];
        int count;
        try
        {
            count = await _stream.ReadAsync(after).OrTimeout();
        }
        catch (IOException)
        {
            // Reset by the server: closed too.
            return;
        }

        Assert.True(count == 0, $"Expected the connection to close, received \"{Encoding.Latin1.GetString(after, 0, count)}\".");
    }

    /// <summary>
    /// Reads until the text received so far contains one of <paramref name="markers"/> and returns that text; fails if
    /// the stream ends first.
    /// </summary>
    public async Task<string> ReadUntilAsync(params string[] markers)
    {
        ArgumentNullException.ThrowIfNull(markers);
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (!markers.Any(m => text.ToString().Contains(m, StringComparison.Ordinal)))
        {
            var count = await _stream.ReadAsync(buffer).OrTimeout();
            Assert.True(count > 0, $"The stream ended before any of \"{string.Join("\", \"", markers)}\"; received \"{text}\".");
            text.Append(Encoding.Latin1.GetString(buffer, 0, count));
        }

        return text.ToString();
    }

    /// <summary>Half-closes the connection: the server reads a FIN.</summary>
    public void ShutdownSend() => Socket.Shutdown(SocketShutdown.Send);

    /// <summary>Closes the connection with SO_LINGER 0: the server gets an RST instead of a FIN.</summary>
    public void Reset()
    {
        // Close the socket itself: disposing the NetworkStream would shut the socket down first, which sends a FIN.
        Socket.LingerState = new LingerOption(true, 0);
        Socket.Dispose();
        Dispose();
    }

    public void Dispose() => _stream.Dispose();

    private async Task<string> ReadAsync(int length, string expected)
    {
        var buffer = new byte[length];
        var filled = 0;
        using var deadline = new CancellationTokenSource(Deadline.Default);
        try
        {
            while (filled < length)
            {
                var count = await _stream.ReadAsync(buffer.AsMemory(filled), deadline.Token);
                if (count == 0)
                {
                    break;
                }

                filled += count;
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"No complete response within {Deadline.Default}.{Environment.NewLine}Expected:{Environment.NewLine}{expected}{Environment.NewLine}" +
                $"Received:{Environment.NewLine}{Encoding.Latin1.GetString(buffer, 0, filled)}");
        }

        return Encoding.Latin1.GetString(buffer, 0, filled);
    }
}
