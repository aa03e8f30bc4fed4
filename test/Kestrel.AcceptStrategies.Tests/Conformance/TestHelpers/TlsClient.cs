using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// The client side of TLS against a host serving <see cref="LocalhostCertificate"/>: the server's certificate is
/// accepted when it is that certificate (pinned by its public key) and refused otherwise; protocols are the OS
/// defaults.
/// </summary>
public static class TlsClient
{
    /// <summary>Accepts <see cref="LocalhostCertificate"/> and nothing else, whatever the chain says.</summary>
    public static bool AcceptsLocalhostCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        LocalhostCertificate.Matches(certificate);

    /// <summary>
    /// A TLS client handshake on <paramref name="connection"/> (bounded); the caller disposes the stream, which leaves
    /// the connection open.
    /// </summary>
    public static async Task<SslStream> HandshakeAsync(this RawConnection connection, string targetHost = "localhost")
    {
        ArgumentNullException.ThrowIfNull(connection);
        var tls = new SslStream(connection.Stream, leaveInnerStreamOpen: true, AcceptsLocalhostCertificate);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = targetHost }).OrTimeout();
            return tls;
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// An HttpClient whose requests are HTTP/2 by default: over TLS its handshake offers h2 and http/1.1 by ALPN.
    /// Everything else is the handler's default (no keep-alive pings).
    /// </summary>
    public static HttpClient Http2()
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = AcceptsLocalhostCertificate;
        return new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version20 };
    }
}
