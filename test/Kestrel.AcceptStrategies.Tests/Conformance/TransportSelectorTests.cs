// Tests of the conformance harness itself (not from aspnetcore): every TestTransport really carries the host it is
// asked for, through RunningServer and through TransportSelector on a host a test builds itself; the runtime-made
// certificate serves TLS; RawConnection matches a Date line by its shape only.

using System.Net.Http;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class TransportSelectorTests : TransportTestBase
{
    [Fact]
    public async Task TestServerRunsOnTheSelectedTransport()
    {
        await using var server = await StartServerAsync(context =>
        {
            context.Response.ContentLength = 5;
            return context.Response.WriteAsync("hello");
        });

        using (var client = await server.ConnectAsync())
        {
            await client.SendAsync(Http1.Get());
            await client.ExpectAsync("HTTP/1.1 200 OK", "Content-Length: 5", Http1.AnyDate, "", "hello");
        }

        AssertAcceptorThreads(server.Port);
    }

    [Fact]
    public async Task HostBuilderRunsOnTheSelectedTransport()
    {
        var sawSocketFeature = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = TransportSelector.GetHostBuilder(Transport)
            .ConfigureWebHost(web => web
                .UseUrls("http://127.0.0.1:0")
                .Configure(app => app.Run(context =>
                {
                    sawSocketFeature.TrySetResult(context.Features.Get<IConnectionSocketFeature>() is not null);
                    return context.Response.WriteAsync("hello");
                })))
            .ConfigureServices(AttachLog)
            .Build();

        await host.StartAsync().OrTimeout();
        try
        {
            var address = new Uri(host.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single());
            using var http = new HttpClient();
            Assert.Equal("hello", await http.GetStringAsync(address).OrTimeout());
            AssertAcceptorThreads(address.Port);

            // Kestrel's own socket connections (Sockets, Serialized) expose their Socket; the event loops' do not.
            if (Transport is TestTransport.Sockets or TestTransport.SocketsInline or TestTransport.Serialized)
            {
                Assert.True(await sawSocketFeature.Task.OrTimeout());
            }
        }
        finally
        {
            await host.StopAsync().OrTimeout();
        }
    }

    [Fact]
    public async Task TestCertificateServesTls()
    {
        using var certificate = LocalhostCertificate.Create();
        Assert.True(certificate.HasPrivateKey);
        await using var server = await StartServerAsync(
            context => context.Response.WriteAsync("hello over TLS"),
            new ServerSetup { Endpoint = listen => listen.UseHttps(certificate) });

        Assert.Equal("hello over TLS", await GetOverTlsAsync(server, (_, presented, _, _) => LocalhostCertificate.Matches(presented)));

        // The certificate is self-signed: a client that validates it the normal way refuses it.
        await Assert.ThrowsAsync<AuthenticationException>(() => GetOverTlsAsync(server, validate: null));
    }

    [Fact]
    public async Task ReceiveMatchesTheDateLineByShape()
    {
        using (var genuine = RawConnection.Over(new MemoryStream(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nDate: {DateTime.UtcNow:r}\r\n\r\n"))))
        {
            await genuine.ExpectAsync("HTTP/1.1 200 OK", Http1.AnyDate, "", "");
        }

        using (var bogus = RawConnection.Over(new MemoryStream(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nDate: Xyz, 99 Abc 0000 99:99:99 UTC\r\n\r\n"))))
        {
            await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => bogus.ExpectAsync("HTTP/1.1 200 OK", Http1.AnyDate, "", ""));
        }
    }

    /// <summary>
    /// A strategy names its acceptor threads <c>acc:PORT#N</c>; Kestrel's own accept loop has none. Counting them for
    /// the port shows which transport really accepted.
    /// </summary>
    private void AssertAcceptorThreads(int port)
    {
        var prefix = $"acc:{port}#";
        var count = 0;
        foreach (var thread in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(thread, "comm")).StartsWith(prefix, StringComparison.Ordinal))
                {
                    count++;
                }
            }
            catch (IOException)
            {
                // The thread ended while we looked.
            }
        }

        if (Transport is TestTransport.Sockets or TestTransport.SocketsInline)
        {
            Assert.Equal(0, count);
        }
        else
        {
            Assert.True(count > 0, $"No thread named {prefix}*: port {port} is not served by {Transport}.");
        }
    }

    /// <summary>GET / over TLS on a fresh connection (HTTP/1.0, so the body is the rest of the stream).</summary>
    private static async Task<string> GetOverTlsAsync(RunningServer server, RemoteCertificateValidationCallback? validate)
    {
        using var client = await server.ConnectAsync();
        await using var tls = new SslStream(client.Stream, leaveInnerStreamOpen: true, validate);
        await tls.AuthenticateAsClientAsync("localhost").OrTimeout();
        await tls.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")).OrTimeout();
        using var reader = new StreamReader(tls, Encoding.ASCII);
        var response = await reader.ReadToEndAsync().OrTimeout();
        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }
}

public sealed class TransportSelectorTestsOnSockets : TransportSelectorTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class TransportSelectorTestsOnReusePort : TransportSelectorTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class TransportSelectorTestsOnThunderingHerd : TransportSelectorTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class TransportSelectorTestsOnSerialized : TransportSelectorTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class TransportSelectorTestsOnSocketsInline : TransportSelectorTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class TransportSelectorTestsOnReusePortInline : TransportSelectorTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
