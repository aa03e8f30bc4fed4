using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// A new worker's request to itself before it reports ready, so its first real request does not pay for JIT; then
/// <c>ready</c> with its own start-up time and CPU, whatever happened.
/// </summary>
internal sealed class WorkerWarmup(
    IOptions<WorkerProcessOptions> options,
    WorkerListeners listeners,
    WorkerRequests requests,
    WorkerControlClient control,
    IServiceProvider services,
    ILoggerFactory loggerFactory)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.WorkerCategory);
    private readonly int _pid = Environment.ProcessId;

    public async Task WarmUpAndReportReadyAsync()
    {
        var path = options.Value.WarmupPath;
        var bound = listeners.Snapshot();
        try
        {
            if (!string.IsNullOrEmpty(path) && bound.Count > 0)
            {
                var started = Stopwatch.GetTimestamp();
                var server = services.GetService<IServer>();
                // An IP endpoint if there is one: its scheme and Host are the ones clients use.
                var target = bound.FirstOrDefault(l => l.EndPoint is IPEndPoint) ?? bound[0];
                var budget = WarmupBudget(options.Value.WorkerStartTimeout, WorkerStartupTime.Measure()?.Wall);
                if (budget == TimeSpan.Zero)
                {
                    throw new TimeoutException($"no time left of WorkerStartTimeout ({options.Value.WorkerStartTimeout}) after this worker's start-up");
                }

                var statusCode = await SendAsync(target, server, path, budget).ConfigureAwait(false);
                AcceptStrategyLog.WorkerWarmedUp(_logger, _pid, path, statusCode, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (Exception e)
        {
            // Best effort, whatever went wrong: a cold worker serves; one that never reports ready does not.
            AcceptStrategyLog.WorkerWarmupFailed(_logger, _pid, path ?? "", $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            // The warm-up is not the app's traffic.
            requests.Reset();
            control.TrySend(WorkerStartupTime.Measure() is var (wall, cpu) ? ControlMessage.ReadyAfter(wall, cpu) : ControlMessage.Ready);
        }
    }

    /// <summary>
    /// What is left for the warm-up of <paramref name="startTimeout"/>, which the supervisor counts from the spawn
    /// (<paramref name="sinceSpawn"/> ago), less a margin for the ready message to arrive in time: a warm-up that would
    /// take longer is given up (logged), and the worker reports ready instead of being killed as failed to start.
    /// </summary>
    internal static TimeSpan WarmupBudget(TimeSpan startTimeout, TimeSpan? sinceSpawn)
    {
        var margin = TimeSpan.FromTicks(Math.Min(startTimeout.Ticks / 4, TimeSpan.FromSeconds(5).Ticks));
        var left = startTimeout - (sinceSpawn ?? TimeSpan.Zero) - margin;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>
    /// GET <paramref name="path"/> with the public endpoint's scheme and Host, over a private connection to the
    /// listener's Kestrel endpoint (a socket pair: no port another local user could reach); returns the status code.
    /// </summary>
    private static async Task<int> SendAsync(AcceptStrategyConnectionListener listener, IServer? server, string path, TimeSpan timeout)
    {
        var addresses = server?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        Uri uri;
        if (listener.EndPoint is IPEndPoint ip)
        {
            var port = ip.Port;
            var address = addresses.Select(a => new Uri(a)).FirstOrDefault(u => u.Port == port)
                ?? new Uri("http://" + listener.EndPoint);
            var authority = address.Host is "+" or "*" or "0.0.0.0" or "[::]" ? "localhost:" + port : address.Authority;
            uri = new Uri($"{address.Scheme}://{authority}{path}");
        }
        else
        {
            // Only Unix sockets: Kestrel names one "http://unix:/path"; the Host is what a proxy in front would send.
            var https = addresses.Any(a => a.StartsWith("https://unix:", StringComparison.Ordinal) && a.EndsWith(listener.EndPoint.ToString() ?? "", StringComparison.Ordinal));
            uri = new Uri($"{(https ? "https" : "http")}://localhost{path}");
        }

        return uri.Scheme == Uri.UriSchemeHttp
            ? await SendPlainAsync(listener, uri, timeout).ConfigureAwait(false)
            : await SendWithHttpClientAsync(listener, uri, timeout).ConfigureAwait(false);
    }

    /// <summary>HTTPS (TLS, maybe HTTP/2): HttpClient, in a method of its own so plain HTTP never loads it.</summary>
    private static async Task<int> SendWithHttpClientAsync(AcceptStrategyConnectionListener listener, Uri uri, TimeSpan timeout)
    {
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = (_, cancellationToken) => ConnectPrivatelyAsync(listener, cancellationToken),

            // Our own endpoint over a private connection: its certificate is whatever the app configured.
#pragma warning disable CA5359
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = static (_, _, _, _) => true },
#pragma warning restore CA5359
        };
        using var client = new HttpClient(handler) { Timeout = timeout };
        using var response = await client.GetAsync(uri, HttpCompletionOption.ResponseContentRead).ConfigureAwait(false);
        return (int)response.StatusCode;
    }

    /// <summary>
    /// Plain HTTP/1.1 by hand: the request warms the server's path, and the worker does not JIT an HTTP client stack
    /// it never uses again (a JIT worker pays for every type it loads). Reads the response to its end (the server
    /// closes: <c>Connection: close</c>).
    /// </summary>
    private static async Task<int> SendPlainAsync(AcceptStrategyConnectionListener listener, Uri uri, TimeSpan timeout)
    {
        using var timeoutSource = new CancellationTokenSource(timeout);
        await using var stream = await ConnectPrivatelyAsync(listener, timeoutSource.Token).ConfigureAwait(false);
        var request = Encoding.ASCII.GetBytes($"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(request, timeoutSource.Token).ConfigureAwait(false);

        var buffer = new byte[4096];
        var head = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer.AsMemory(head), timeoutSource.Token).ConfigureAwait(false)) > 0)
        {
            // Keep the status line's bytes; discard the rest.
            head = Math.Min(head + read, 32);
        }

        // "HTTP/1.1 200 ..."
        return head >= 12 && int.TryParse(buffer.AsSpan(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var status)
            ? status
            : throw new InvalidDataException("The warm-up response has no HTTP/1.1 status line.");
    }

    /// <summary>
    /// One end of a fresh <c>socketpair(2)</c> is handed to Kestrel like an accepted connection (not counted: the
    /// warm-up is not the app's traffic), the other is returned for the HTTP client.
    /// </summary>
    private static async ValueTask<Stream> ConnectPrivatelyAsync(AcceptStrategyConnectionListener listener, CancellationToken cancellationToken)
    {
        var (server, client) = CreateSocketPair();
        try
        {
            await listener.AdoptAsync(server, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(client, ownsSocket: true);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private static unsafe (Socket Server, Socket Client) CreateSocketPair()
    {
        var fds = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, fds) != 0)
        {
            throw new SocketException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }

        return (new Socket(new SafeSocketHandle(fds[0], ownsHandle: true)), new Socket(new SafeSocketHandle(fds[1], ownsHandle: true)));
    }
}
