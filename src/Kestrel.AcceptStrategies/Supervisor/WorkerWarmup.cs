using System.Net;
using System.Net.Security;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>A new worker's request to itself, before it reports ready, so its first real request does not pay for JIT.</summary>
internal static class WorkerWarmup
{
    /// <summary>
    /// GET <paramref name="path"/> with the public endpoint's scheme and Host, over a private connection to the
    /// listener's Kestrel endpoint (a socket pair: no port another local user could reach); returns the status code.
    /// </summary>
    public static async Task<int> SendAsync(AcceptStrategyConnectionListener listener, IServer? server, string path, TimeSpan timeout)
    {
        var port = ((IPEndPoint)listener.EndPoint).Port;
        var addresses = server?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.Select(a => new Uri(a)).FirstOrDefault(u => u.Port == port)
            ?? new Uri("http://" + listener.EndPoint);

        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = (_, cancellationToken) => listener.ConnectPrivatelyAsync(cancellationToken),

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
}
