using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// Over HTTPS, a client that completes the handshake and then stops reading a large response: Kestrel's
/// MinResponseDataRate aborts the connection, and the app's write loop (passing RequestAborted, as documented) must see
/// it: a write throws. A loop whose writes go on "succeeding" into the aborted connection until it has "sent" all of
/// its response, or that waits forever, missed it.
/// </summary>
/// <remarks>
/// Kestrel has a window of its own here: its abort turns the response into a sink before it fires RequestAborted, and
/// a loop that finishes its remaining writes inside that window never sees the abort. Through Kestrel's own socket
/// transport (Serialized) that happened to 3 of 90 loops run one after another here, and 1 of 100 run twenty at a time
/// (the upstream test of this scenario, HttpsConnectionClosedWhenResponseDoesNotSatisfyMinimumDataRate, is quarantined
/// as flaky: dotnet/aspnetcore#49974). A transport that released the app's pending flush inside Abort (the event loop
/// once ended its send loop there, inline) widened the window: 3 to 9 of every 10 loops missed. So the scenario runs
/// <see cref="Iterations"/> clients at once per strategy and fails when more than <see cref="ToleratedMisses"/> miss.
/// </remarks>
[Collection(ConnectionFaults.Name)]
public sealed class HttpsMinResponseDataRateTests(ITestOutputHelper output)
{
    private const int Iterations = 10;

    /// <summary>Kestrel's own window (see remarks) lets a loop miss now and then; more than this is the transport's.</summary>
    private const int ToleratedMisses = 2;

    /// <summary>1 GB in 64 KB writes: far more than the sockets and pipes hold, so only the abort ends the loop early.</summary>
    private const int LoopWrites = 16 * 1024;

    /// <summary>
    /// From the request to the end of the app's loop: the buffered bytes' time at the minimum rate, its grace period, a
    /// heartbeat, and slack for a busy machine (about 6 s here).
    /// </summary>
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(15);

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task HttpsClientStopsReading_MinResponseDataRateAbort_EndsTheAppsWriteLoopWithAnException(AcceptStrategy strategy)
    {
        using var certificate = SelfSignedCertificate();
        var connections = new ServerConnections(strategy);
        var loops = new ConcurrentDictionary<int, TaskCompletionSource<(bool Threw, string How)>>();
        await using var server = await FaultHost.StartAsync(
            strategy,
            connections,
            app => app.MapGet("/large", async (HttpContext context) =>
            {
                var loop = loops[int.Parse(context.Request.Query["i"]!, System.Globalization.CultureInfo.InvariantCulture)];
                var chunk = new byte[64 * 1024];
                try
                {
                    // As an app streams a download: until the client has it all or the request is aborted.
                    for (var i = 0; i < LoopWrites; i++)
                    {
                        await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    }

                    loop.TrySetResult((false, $"ran to completion: {LoopWrites} writes of {chunk.Length} bytes \"succeeded\" to a client that read none of them " +
                        $"(RequestAborted {(context.RequestAborted.IsCancellationRequested ? "fired" : "never fired")})"));
                }
                catch (Exception e)
                {
                    loop.TrySetResult((true, e.GetType().Name));
                }
            }),
            builder => builder.WebHost.ConfigureKestrel(k =>
            {
                // Strict enough that the few MB the sockets and pipes take before the writes stall buy little time
                // (each write buys its size at this rate); the grace period must be over a second.
                k.Limits.MinResponseDataRate = new MinDataRate(bytesPerSecond: 1_000_000, gracePeriod: TimeSpan.FromSeconds(2));
                k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate));
            }));

        // The clients run at once (each its own connection and loop), so the scenario costs one abort's time, not ten.
        var outcomes = await Task.WhenAll(Enumerable.Range(0, Iterations).Select(RunClientAsync));
        var misses = outcomes.Where(o => o is not null).ToList();

        async Task<string?> RunClientAsync(int i)
        {
            var loop = new TaskCompletionSource<(bool Threw, string How)>(TaskCreationOptions.RunContinuationsAsynchronously);
            loops[i] = loop;

            using var cts = new CancellationTokenSource(TestServer.Timeout);
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port), cts.Token);

            // The server's certificate is the one made here: trusted by its hash, nothing else.
            await using var tls = new SslStream(
                new NetworkStream(socket, ownsSocket: false),
                leaveInnerStreamOpen: false,
                (_, presented, _, _) => presented is not null && presented.GetCertHashString() == certificate.GetCertHashString());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, cts.Token);
            await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET /large?i={i} HTTP/1.1\r\nHost: localhost\r\n\r\n"), cts.Token);
            var sent = Stopwatch.StartNew();
            try
            {
                // The client reads nothing more; the app's loop must end, by an exception, by itself.
                if (await Task.WhenAny(loop.Task, Task.Delay(s_limit, cts.Token)) != loop.Task)
                {
                    var onServer = await connections.ForClientAsync(socket.LocalPort(), cts.Token);
                    return $"iteration {i}: the write loop still running {s_limit.TotalSeconds} s after the request " +
                        $"(ConnectionClosed {(onServer.Closed.Task.IsCompleted ? "fired" : "not fired")}, Kestrel {(onServer.Ended.Task.IsCompleted ? "done" : "not done")} with the connection)";
                }

                var (threw, how) = await loop.Task;
                var line = $"iteration {i}: after {sent.Elapsed.TotalSeconds:F1} s the write loop {(threw ? "threw " : "")}{how}";
                output.WriteLine(line);
                return threw ? null : line;
            }
            finally
            {
                // Ends the client's side (and the server's, if it is still there).
                socket.Reset();
            }
        }

        output.WriteLine($"{strategy}: {misses.Count} of {Iterations} write loops missed the abort");
        Assert.True(
            misses.Count <= ToleratedMisses,
            $"{misses.Count} of {Iterations} write loops under {strategy} missed the abort (at most {ToleratedMisses} tolerated): {string.Join("; ", misses)}");
    }

    /// <summary>A certificate for localhost and 127.0.0.1, made now; exported and imported again so its key is usable by SslStream.</summary>
    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), password: null);
    }
}
