using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor;
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
    IOptions<AcceptStrategyOptions> options,
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
                var statusCode = await SendAsync(bound[0], server, path, options.Value.WorkerStartTimeout).ConfigureAwait(false);
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
    /// GET <paramref name="path"/> with the public endpoint's scheme and Host, over a private connection to the
    /// listener's Kestrel endpoint (a socket pair: no port another local user could reach); returns the status code.
    /// </summary>
    private static async Task<int> SendAsync(AcceptStrategyConnectionListener listener, IServer? server, string path, TimeSpan timeout)
    {
        var port = ((IPEndPoint)listener.EndPoint).Port;
        var addresses = server?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.Select(a => new Uri(a)).FirstOrDefault(u => u.Port == port)
            ?? new Uri("http://" + listener.EndPoint);

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
        var authority = address.Host is "+" or "*" or "0.0.0.0" or "[::]" ? "localhost:" + port : address.Authority;
        using var response = await client.GetAsync(new Uri($"{address.Scheme}://{authority}{path}"), HttpCompletionOption.ResponseContentRead).ConfigureAwait(false);
        return (int)response.StatusCode;
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
