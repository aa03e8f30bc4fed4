using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Supervisor.Processes;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>
/// The supervisor's status view: a small HTTP/1.1 responder on its own loopback or Unix socket (never one of the app's
/// endpoints; .NET opens it close-on-exec, so workers never inherit it). One request per connection, then close. A
/// client gets <see cref="Timeout"/> to send its request head (at most <see cref="MaxHeadBytes"/>) and to read the
/// answer, so a silent or garbage client costs a socket for a few seconds and never the supervisor's loop, which only
/// hands over a snapshot; RSS is read and the answer written here.
/// </summary>
internal sealed class StatusServer : IAsyncDisposable
{
    public const int MaxHeadBytes = 8 * 1024;

    // Past this many open status connections new ones are closed at once: the view is for operators, not load.
    public const int MaxConnections = 32;

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(1);

    private readonly Socket _listener;
    private readonly string? _unixPath;
    private readonly Func<CancellationToken, Task<StatusSnapshot>> _snapshot;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;
    private int _connections;

    private StatusServer(Socket listener, string address, string? unixPath, Func<CancellationToken, Task<StatusSnapshot>> snapshot, ILogger logger)
    {
        _listener = listener;
        Address = address;
        _unixPath = unixPath;
        _snapshot = snapshot;
        _logger = logger;
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>As bound: the real port when 0 was asked for.</summary>
    public string Address { get; }

    /// <summary>
    /// Binds and starts serving; throws <see cref="InvalidOperationException"/> naming the endpoint and the problem, after
    /// logging it as the end of start-up unless <paramref name="fatal"/> is false.
    /// </summary>
    public static StatusServer Start(
        StatusEndpointAddress address, IReadOnlyList<SupervisedEndpoint> appEndpoints, Func<CancellationToken, Task<StatusSnapshot>> snapshot, ILogger logger,
        bool fatal = true)
    {
        Socket? listener = null;
        try
        {
            string bound;
            if (address.UnixPath is { } path)
            {
                if (StatusSocketFile.RemoveStale(path))
                {
                    AcceptStrategyLog.StatusSocketRemoved(logger, path);
                }

                listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                listener.Bind(new UnixDomainSocketEndPoint(path));
                try
                {
                    // Before listen(2): until then a connect is refused, so nobody gets in under the umask's mode.
                    if (!OperatingSystem.IsWindows())
                    {
                        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                    }
                }
                catch
                {
                    StatusSocketFile.Remove(path);
                    throw;
                }

                bound = address.Display();
            }
            else
            {
                var ip = address.Ip!;
                if (ip.Port != 0 && appEndpoints.FirstOrDefault(e => e.BoundEndPoint is IPEndPoint app && Overlaps(app, ip)) is { } clash)
                {
                    throw new InvalidOperationException($"it is one of the app's endpoints ({clash.BoundEndPoint}); give the status view a port of its own");
                }

                listener = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                listener.Bind(ip);
                bound = address.Display(((IPEndPoint)listener.LocalEndPoint!).Port);
            }

            listener.Listen(16);
            AcceptStrategyLog.StatusEndpointListening(logger, bound, Environment.ProcessId);
            return new StatusServer(listener, bound, address.UnixPath, snapshot, logger);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            listener?.Dispose();
            if (fatal)
            {
                AcceptStrategyLog.StatusEndpointFailed(logger, address.Display(), e.Message);
            }

            throw new InvalidOperationException($"Could not listen on the status endpoint {address}: {e.Message}.", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        if (_unixPath is not null)
        {
            StatusSocketFile.Remove(_unixPath);
        }

        _stopping.Dispose();
    }

    /// <summary>The same port on the same address, or on the wildcard address of its family.</summary>
    private static bool Overlaps(IPEndPoint app, IPEndPoint status) =>
        app.Port == status.Port && (app.Address.Equals(status.Address) || app.Address.Equals(IPAddress.Any) || app.Address.Equals(IPAddress.IPv6Any));

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // Out of descriptors, or a connection reset before it was accepted: try again shortly.
                AcceptStrategyLog.StatusRequestRefused(_logger, 0, $"accept failed: {e.SocketErrorCode}");
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            if (Interlocked.Increment(ref _connections) > MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                AcceptStrategyLog.StatusRequestRefused(_logger, 0, $"{MaxConnections} status connections are open already; closed");
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            deadline.CancelAfter(Timeout);
            var buffer = new byte[MaxHeadBytes];
            var received = 0;
            int headLength;
            while ((headLength = StatusRequest.HeadLength(buffer.AsSpan(0, received))) < 0 && received < buffer.Length)
            {
                var n = await client.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                received += n;
            }

            var request = headLength < 0
                ? new StatusRequest(400, Detail: $"no complete request head in {MaxHeadBytes} bytes")
                : StatusRequest.Parse(buffer.AsSpan(0, headLength));

            // A fresh allowance to take the snapshot and write the answer.
            deadline.CancelAfter(Timeout);
            var response = await AnswerAsync(request, deadline.Token).ConfigureAwait(false);
            await client.SendAsync(response, SocketFlags.None, deadline.Token).ConfigureAwait(false);

            // Lingering close: had unread bytes been left in its receive buffer, the kernel would reset the connection
            // and the client could lose the answer.
            client.Shutdown(SocketShutdown.Send);
            deadline.CancelAfter(LingerTime);
            for (var drained = 0; drained < 1 << 20;)
            {
                var n = await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                drained += n;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Timed out, reset by the client, or the supervisor is stopping: the connection just closes.
        }
        catch (Exception e)
        {
            // A bug here must not take the supervisor down, nor pass unseen.
            AcceptStrategyLog.SupervisorEventFailed(_logger, e);
        }
        finally
        {
            client.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    private async Task<byte[]> AnswerAsync(StatusRequest request, CancellationToken token)
    {
        if (request.Status != 200)
        {
            AcceptStrategyLog.StatusRequestRefused(_logger, request.Status, request.Detail);
            return Response(request.Status, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes($"{request.Status} {Reason(request.Status)}: {request.Detail}\n"), false);
        }

        StatusSnapshot snapshot;
        try
        {
            snapshot = await _snapshot(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            AcceptStrategyLog.StatusSnapshotTimedOut(_logger, (long)Timeout.TotalMilliseconds);
            return Response(503, "text/plain; charset=utf-8", "503 Service Unavailable: the supervisor did not answer in time.\n"u8.ToArray(), false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            AcceptStrategyLog.SupervisorEventFailed(_logger, e);
            return Response(500, "text/plain; charset=utf-8", "500 Internal Server Error: the snapshot failed (logged, event 19).\n"u8.ToArray(), false);
        }

        // Read now, off the loop: what the kernel counts at the moment of asking.
        snapshot = snapshot with { Workers = [.. snapshot.Workers.Select(w => w with { RssBytes = ResidentMemory.Read(w.Pid) })] };
        return request.Text
            ? Response(200, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes(StatusText.Write(snapshot)), request.HeadOnly)
            : Response(200, "application/json", StatusJson.Write(snapshot), request.HeadOnly);
    }

    private static byte[] Response(int status, string contentType, byte[] body, bool headOnly)
    {
        var head = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {status} {Reason(status)}\r\n")
            .Append(CultureInfo.InvariantCulture, $"Content-Type: {contentType}\r\nContent-Length: {body.Length}\r\n")
            .Append(status == 405 ? "Allow: GET, HEAD\r\n" : "")
            .Append("Cache-Control: no-store\r\nConnection: close\r\n\r\n")
            .ToString();
        return [.. Encoding.ASCII.GetBytes(head), .. headOnly ? [] : body];
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
}
