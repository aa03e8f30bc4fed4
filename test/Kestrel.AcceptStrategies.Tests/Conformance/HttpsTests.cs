// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/HttpsTests.cs, same names, written for this
// harness; each runs on all four transports. The cases are those of the file's last real-TCP version (a 2.x servicing
// branch; since 3.0 the file runs on Kestrel's in-memory transport, which tests no transport): TLS over a real
// socket with empty connections, garbage handshakes, resets, aborts and a handshake timeout.
// Differs from upstream's cases:
// - Kestrel's TLS events now come from HttpsConnectionMiddleware (TransportEvents.HttpsCategory, where 2.x had its
//   HttpsConnectionAdapter), with the same events: AuthenticationFailed and AuthenticationTimedOut, both Debug.
//   "The first entry of that category" is the first one the test's log captured; "no error logged" is no Error entry
//   in any category; "no ObjectDisposedException logged" is no entry carrying one.
// - The server certificate is the runtime-made LocalhostCertificate; clients accept that certificate only, pinned by
//   its key, where upstream's accept any.
// - The client's TLS protocols are the OS defaults (SslProtocols.None) instead of TLS 1.1 | 1.2: TLS 1.1 is obsolete in
//   .NET and refused by OpenSSL 3's default security level (the newer in-memory version of the file uses the default
//   too).
// - HandshakeTimesOutAndIsLoggedAsDebug is one case expecting a FIN (the client's read returns 0), where the 2.x file
//   has a fin row and a reset row: since 3.0 a handshake timeout is logged and the connection closed without an
//   abort, so it ends with a FIN whatever FinOnError says (as the newer file expects); both rows would expect the same.
// - FinOnError row not here (DoesNotThrowObjectDisposedExceptionFromWriteAsyncAfterConnectionIsAborted(fin: true)):
//   FinOnError is a process-wide switch, so it cannot be turned on for one host of a shared test process. The fin
//   parameter stays, so the remaining row keeps its name; without FinOnError the app's abort resets the connection.
// - Every wait is bounded (Deadline.Default); hosts are built by RunningServer (one endpoint on port 0).
// Dropped: UseHttpsDefaultsToDefaultCert, ConfigureHttpsDefaultsNeverLoadsDefaultCert,
// ConfigureCertSelectorNeverLoadsDefaultCert: they check which certificate Kestrel's options load (no connection, no
// transport).

using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class HttpsTests : TransportTestBase
{
    private static readonly byte[] GetRequest = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost:\r\n\r\n");

    [Fact]
    public async Task EmptyRequestLoggedAsDebug()
    {
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(_ => Task.CompletedTask, Tls(certificate)))
        {
            // Connect and close at once: the server's handshake reads a FIN before any ClientHello.
            var client = await server.ConnectAsync();
            client.Dispose();

            await AssertFirstTlsEntryAsync("AuthenticationFailed");
        }

        AssertNoErrorLogged();
    }

    [Fact]
    public async Task ClientHandshakeFailureLoggedAsDebug()
    {
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(_ => Task.CompletedTask, Tls(certificate)))
        {
            // Ten zero bytes are no ClientHello.
            using (var client = await server.ConnectAsync())
            {
                await client.Stream.WriteAsync(new byte[10]).OrTimeout();
            }

            await AssertFirstTlsEntryAsync("AuthenticationFailed");
        }

        AssertNoErrorLogged();
    }

    [Fact]
    public async Task DoesNotThrowObjectDisposedExceptionOnConnectionAbort()
    {
        // The app writes every second until the connection goes away; the client reads the start and leaves.
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(
            async context =>
            {
                var aborted = context.RequestAborted;
                while (!aborted.IsCancellationRequested)
                {
                    try
                    {
                        await context.Response.WriteAsync("hello, world", aborted);
                        await Task.Delay(TimeSpan.FromSeconds(1), aborted);
                    }
                    catch (TaskCanceledException)
                    {
                        // The client left: not an error.
                    }
                }
            },
            Tls(certificate)))
        {
            using var client = await server.ConnectAsync();
            await using (var tls = await client.HandshakeAsync("127.0.0.1"))
            {
                await tls.WriteAsync(GetRequest).OrTimeout();
                _ = await tls.ReadAsync(new byte[32]).OrTimeout();
            }
        }

        AssertNoObjectDisposedExceptionLogged();
    }

    [Theory]
    [InlineData(false)]
    public async Task DoesNotThrowObjectDisposedExceptionFromWriteAsyncAfterConnectionIsAborted(bool fin)
    {
        // The app aborts its connection and then writes: the write must neither throw nor touch a disposed stream.
        var write = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(
            context => ReportTo(write, () =>
            {
                context.Abort();
                return context.Response.WriteAsync("hello, world");
            }),
            Tls(certificate)))
        {
            using var client = await server.ConnectAsync();
            await using var tls = await client.HandshakeAsync("127.0.0.1");
            await tls.WriteAsync(GetRequest).OrTimeout();
            if (fin)
            {
                _ = await tls.ReadAsync(new byte[32]).OrTimeout();
            }
            else
            {
                await Assert.ThrowsAsync<IOException>(() => tls.ReadAsync(new byte[32]).AsTask()).OrTimeout();
            }
        }

        await write.Task.OrTimeout();
    }

    [Fact]
    public async Task DoesNotThrowObjectDisposedExceptionOnEmptyConnection()
    {
        // A client that completes the handshake and leaves without a request.
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(_ => Task.CompletedTask, Tls(certificate)))
        {
            using var client = await server.ConnectAsync();
            await using var tls = await client.HandshakeAsync("127.0.0.1");
        }

        AssertNoObjectDisposedExceptionLogged();
    }

    [Fact]
    public async Task ConnectionFilterDoesNotLeakBlock()
    {
        // A client that connects and resets at once; the server must stop normally afterwards.
        using var certificate = LocalhostCertificate.Create();
        await using var server = await StartServerAsync(_ => Task.CompletedTask, Tls(certificate));
        var client = await server.ConnectAsync();
        client.Reset();
        await server.StopAsync();
    }

    [Fact]
    public async Task HandshakeTimesOutAndIsLoggedAsDebug()
    {
        // The client connects and stays silent; after the 1 s handshake timeout the server closes the connection
        // without sending anything.
        using var certificate = LocalhostCertificate.Create();
        await using (var server = await StartServerAsync(
            _ => Task.CompletedTask,
            new ServerSetup
            {
                Endpoint = listen => listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = certificate,
                    HandshakeTimeout = TimeSpan.FromSeconds(1),
                }),
            }))
        {
            using var client = await server.ConnectAsync();
            Assert.Equal(0, await client.Stream.ReadAsync(new byte[1]).OrTimeout());
        }

        await AssertFirstTlsEntryAsync("AuthenticationTimedOut");
    }

    private static ServerSetup Tls(X509Certificate2 certificate) =>
        new() { Endpoint = listen => listen.UseHttps(certificate) };

    /// <summary>The first entry Kestrel's TLS middleware logged is <paramref name="eventName"/>, at Debug.</summary>
    private async Task AssertFirstTlsEntryAsync(string eventName)
    {
        var first = await LoggedAsync(entry => entry.Category == TransportEvents.HttpsCategory);
        Assert.Equal(eventName, first.Event.Name);
        Assert.Equal(LogLevel.Debug, first.Level);
    }

    private void AssertNoErrorLogged()
    {
        var errors = Log.Entries.Where(e => e.Level == LogLevel.Error).ToArray();
        Assert.True(errors.Length == 0, "Logged as errors:" + Environment.NewLine + string.Join(Environment.NewLine, errors.AsEnumerable()));
    }

    private void AssertNoObjectDisposedExceptionLogged() => Assert.DoesNotContain(Log.Entries, e => e.Exception is ObjectDisposedException);
}

public sealed class HttpsTestsOnSockets : HttpsTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class HttpsTestsOnReusePort : HttpsTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class HttpsTestsOnThunderingHerd : HttpsTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class HttpsTestsOnSerialized : HttpsTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class HttpsTestsOnSocketsInline : HttpsTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class HttpsTestsOnReusePortInline : HttpsTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
