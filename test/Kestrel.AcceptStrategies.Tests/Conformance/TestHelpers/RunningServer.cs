using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// A started generic host running Kestrel on one transport with one endpoint on port 0 and one
/// <see cref="RequestDelegate"/>, plus the raw client connections a test opens to it.
/// </summary>
/// <remarks>
/// <see cref="DisposeAsync"/> first closes any client connection the test left open (so an app waiting for its
/// connection to go away is released), then stops the host, giving requests still running
/// <see cref="StopGrace"/> before Kestrel aborts them, and disposes it.
/// </remarks>
public sealed class RunningServer : IAsyncDisposable
{
    /// <summary>How long a stop lets running requests finish before Kestrel aborts them.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private readonly IHost _host;
    private readonly List<RawConnection> _clients = [];
    private bool _disposed;

    private RunningServer(IHost host, IPEndPoint endPoint)
    {
        _host = host;
        EndPoint = endPoint;
    }

    /// <summary>The endpoint as bound (the real port).</summary>
    public IPEndPoint EndPoint { get; }

    public int Port => EndPoint.Port;

    /// <summary><c>http://address:port/</c>, for HttpClient.</summary>
    public Uri BaseUri => new($"http://{(EndPoint.Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{EndPoint.Address}]" : EndPoint.Address.ToString())}:{Port}/");

    /// <summary><c>https://address:port/</c>, for HttpClient against an endpoint with TLS (<see cref="TlsClient"/>).</summary>
    public Uri HttpsUri => new UriBuilder(BaseUri) { Scheme = Uri.UriSchemeHttps }.Uri;

    /// <summary>Builds and starts the host (bounded by <see cref="Deadline.Default"/>).</summary>
    public static async Task<RunningServer> StartAsync(TestTransport transport, LogCapture log, RequestDelegate app, ServerSetup? setup = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(app);
        setup ??= new ServerSetup();

        ListenOptions? endpoint = null;
        var host = TransportSelector.GetHostBuilder(transport)
            .ConfigureWebHost(web => web
                .UseKestrel(kestrel =>
                {
                    kestrel.AddServerHeader = false;
                    setup.Limits?.Invoke(kestrel.Limits);
                    kestrel.Listen(setup.Address, 0, listen =>
                    {
                        endpoint = listen;
                        setup.Endpoint?.Invoke(listen);
                    });
                })
                .Configure(pipeline => pipeline.Run(app)))
            .ConfigureServices(services =>
            {
                log.AttachTo(services);
                services.AddOptions<SocketTransportOptions>()
                    .Configure<IOptions<KestrelServerOptions>>((sockets, kestrel) => sockets.MaxReadBufferSize = kestrel.Value.Limits.MaxRequestBufferSize);
                if (setup.Meters is { } meters)
                {
                    services.AddSingleton(meters);
                }
            })
            .Build();

        try
        {
            await host.StartAsync().OrTimeout();
            var bound = endpoint?.IPEndPoint ?? throw new InvalidOperationException("Kestrel started without the endpoint the harness configured.");
            return new RunningServer(host, bound);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>A new TCP connection to the endpoint, closed at the latest when the server is disposed.</summary>
    public async Task<RawConnection> ConnectAsync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var client = await RawConnection.ConnectAsync(EndPoint);
        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }

    /// <summary>
    /// Stops the host: Kestrel stops accepting, closes idle connections and waits for running requests until
    /// <paramref name="grace"/> (default <see cref="StopGrace"/>) has passed, then aborts them.
    /// </summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        using var patience = new CancellationTokenSource(grace ?? StopGrace);
        await StopAsync(patience.Token);
    }

    /// <summary>
    /// Stops the host, letting running requests finish until <paramref name="patience"/> is cancelled (the test decides
    /// when a graceful stop turns abortive).
    /// </summary>
    public Task StopAsync(CancellationToken patience) => _host.StopAsync(patience).OrTimeout();

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        lock (_clients)
        {
            _clients.ForEach(c => c.Dispose());
        }

        try
        {
            await StopAsync();
        }
        finally
        {
            _host.Dispose();
        }
    }
}
