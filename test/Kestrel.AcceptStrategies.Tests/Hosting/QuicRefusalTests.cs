using System.Net;
using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests.Hosting;

/// <summary>
/// HTTP/3 in worker mode is refused at start-up, naming the endpoint. (End to end it needs TLS and libmsquic, which
/// this machine lacks; here the refusal itself and that Kestrel asks it first.)
/// </summary>
public sealed class QuicRefusalTests
{
    [Fact]
    public async Task BindAsync_AnyEndpoint_RefusedNamingIt()
    {
        var refusal = new QuicRefusal(Options.Create(new WorkerProcessOptions { Workers = 2 }), NullLoggerFactory.Instance);

        var error = await Assert.ThrowsAsync<NotSupportedException>(() => refusal.BindAsync(new IPEndPoint(IPAddress.Loopback, 8443)).AsTask());

        Assert.Contains("HTTP/3 (QUIC) on 127.0.0.1:8443", error.Message, StringComparison.Ordinal);
        Assert.Contains("Workers = 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WorkerMode_RegisteredLastSoKestrelAsksItFirst_SingleProcessUntouched()
    {
        var workers = TestServer.Build(workers: o => o.Workers = 2);
        await using (workers)
        {
            Assert.IsType<QuicRefusal>(workers.Services.GetServices<IMultiplexedConnectionListenerFactory>().Last());
        }

        var single = TestServer.Build();
        await using (single)
        {
            Assert.DoesNotContain(single.Services.GetServices<IMultiplexedConnectionListenerFactory>(), f => f is QuicRefusal);
        }
    }
}
