using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// HTTP/1.1 over a plain socket, for what HttpClient hides: pipelining, a small receive buffer, a client that stops
/// reading or closes mid-request, and how the connection ended.
/// </summary>
internal sealed class RawHttpClient : IDisposable
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawHttpClient(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/>; a receive buffer set here also bounds the TCP window.</summary>
    public static async Task<RawHttpClient> ConnectAsync(int port, CancellationToken ct, int? receiveBufferSize = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (receiveBufferSize is { } size)
            {
                socket.ReceiveBufferSize = size;
            }

            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
            return new RawHttpClient(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public async Task SendAsync(string text, CancellationToken ct)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        for (var sent = 0; sent < bytes.Length;)
        {
            sent += await Socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, ct);
        }
    }

    /// <summary>Reads a status line and headers; the body's bytes stay buffered for <see cref="ReadAsync"/>.</summary>
    public async Task<(int Status, Dictionary<string, string> Headers)> ReadHeadAsync(CancellationToken ct)
    {
        int end;
        while ((end = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (!await FillAsync(ct))
            {
                throw new IOException($"Connection ended inside a response head: '{Encoding.ASCII.GetString(_buffer, _start, _end - _start)}'");
            }
        }

        var lines = Encoding.ASCII.GetString(_buffer, _start, end).Split("\r\n");
        _start += end + 4;
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        return (int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), headers);
    }

    /// <summary>Up to <paramref name="destination"/>.Length bytes (buffered ones first); 0 at the end of the stream.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct)
    {
        if (_start == _end && !await FillAsync(ct))
        {
            return 0;
        }

        var n = Math.Min(destination.Length, _end - _start);
        _buffer.AsMemory(_start, n).CopyTo(destination);
        _start += n;
        return n;
    }

    /// <summary>Exactly <paramref name="length"/> body bytes as ASCII.</summary>
    public async Task<string> ReadBodyAsync(int length, CancellationToken ct)
    {
        var body = new byte[length];
        for (var read = 0; read < length;)
        {
            var n = await ReadAsync(body.AsMemory(read), ct);
            read += n > 0 ? n : throw new IOException($"Connection ended after {read} of {length} body bytes");
        }

        return Encoding.ASCII.GetString(body);
    }

    /// <summary>One whole response (Content-Length or chunked); the body as ASCII.</summary>
    public async Task<(int Status, string Body)> ReadResponseAsync(CancellationToken ct)
    {
        var (status, headers) = await ReadHeadAsync(ct);
        if (headers.TryGetValue("Content-Length", out var length))
        {
            return (status, await ReadBodyAsync(int.Parse(length, System.Globalization.CultureInfo.InvariantCulture), ct));
        }

        // Chunked: hex size lines, each chunk followed by CRLF, and an empty line after the last (empty) chunk.
        var body = new StringBuilder();
        int size;
        while ((size = Convert.ToInt32(await ReadLineAsync(ct), 16)) > 0)
        {
            body.Append(await ReadBodyAsync(size, ct));
            await ReadLineAsync(ct);
        }

        await ReadLineAsync(ct);
        return (status, body.ToString());
    }

    private async Task<string> ReadLineAsync(CancellationToken ct)
    {
        int end;
        while ((end = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
        {
            if (!await FillAsync(ct))
            {
                throw new IOException("Connection ended inside a line");
            }
        }

        var line = Encoding.ASCII.GetString(_buffer, _start, end);
        _start += end + 2;
        return line;
    }

    /// <summary>Reads until the server ends the connection; returns how (EOF or the socket error of a reset).</summary>
    public async Task<string> ReadToEndAsync(CancellationToken ct)
    {
        var scratch = new byte[16 * 1024];
        try
        {
            while (await ReadAsync(scratch, ct) > 0)
            {
            }

            return "EOF";
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode.ToString();
        }
    }

    public void Dispose() => Socket.Dispose();

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        if (_start == _end)
        {
            (_start, _end) = (0, 0);
        }
        else if (_end == _buffer.Length)
        {
            Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
            (_start, _end) = (0, _end - _start);
        }

        var n = await Socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct);
        _end += n;
        return n > 0;
    }
}
