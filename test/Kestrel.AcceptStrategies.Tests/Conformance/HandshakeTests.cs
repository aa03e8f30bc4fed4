// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/Http2/HandshakeTests.cs, same names, written for
// this harness; each runs on all four transports.
// Differs from upstream's cases:
// - Plain facts: upstream runs them only where TLS offers ALPN (and not before Windows 10); on Linux SslStream always
//   does.
// - The server certificate is the runtime-made LocalhostCertificate; the client (TlsClient.Http2) accepts that
//   certificate only, pinned by its key, where upstream's accepts any. It asks for https://127.0.0.1:port/.
// - The app records the protocol ALPN chose and the test asserts it, instead of asserting inside the app (where a
//   failure would reach the test as a 500).
// Dropped: TlsAndHttp2NotSupportedOnWin7 (Windows 7 only: its TLS has no ALPN).

using System.Net.Security;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class HandshakeTests : TransportTestBase
{
    [Fact]
    public Task TlsAlpnHandshakeSelectsHttp2From1and2() => AssertAlpnSelectsHttp2(HttpProtocols.Http1AndHttp2);

    [Fact]
    public Task TlsAlpnHandshakeSelectsHttp2() => AssertAlpnSelectsHttp2(HttpProtocols.Http2);

    /// <summary>
    /// An endpoint with TLS that speaks <paramref name="protocols"/>; a client that offers h2 and http/1.1 gets h2, and
    /// the request runs as HTTP/2.
    /// </summary>
    private async Task AssertAlpnSelectsHttp2(HttpProtocols protocols)
    {
        var negotiated = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var certificate = LocalhostCertificate.Create();
        await using var server = await StartServerAsync(
            context =>
            {
                var alpn = context.Features.Get<ITlsApplicationProtocolFeature>();
                negotiated.TrySetResult(alpn is null ? null : Encoding.ASCII.GetString(alpn.ApplicationProtocol.Span));
                return context.Response.WriteAsync("hello world " + context.Request.Protocol);
            },
            new ServerSetup
            {
                Endpoint = listen =>
                {
                    listen.Protocols = protocols;
                    listen.UseHttps(certificate);
                },
            });

        using var client = TlsClient.Http2();
        Assert.Equal("hello world HTTP/2", await client.GetStringAsync(server.HttpsUri).OrTimeout());
        Assert.Equal(Encoding.ASCII.GetString(SslApplicationProtocol.Http2.Protocol.Span), await negotiated.Task.OrTimeout());
    }
}

public sealed class HandshakeTestsOnSockets : HandshakeTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class HandshakeTestsOnReusePort : HandshakeTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class HandshakeTestsOnThunderingHerd : HandshakeTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class HandshakeTestsOnSerialized : HandshakeTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class HandshakeTestsOnSocketsInline : HandshakeTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class HandshakeTestsOnReusePortInline : HandshakeTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
