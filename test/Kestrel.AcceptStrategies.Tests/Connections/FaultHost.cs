using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// A real Kestrel host on 127.0.0.1:0 with the strategy under test (two acceptors), every connection recorded by
/// <see cref="ServerConnections"/>, and optionally a capturing logger provider and configuration keys (as a user's
/// appsettings.json would set them).
/// </summary>
internal sealed class FaultHost : IAsyncDisposable
{
    /// <summary>
    /// How long a stop waits for connections to finish before Kestrel aborts them: a connection whose close the
    /// transport lost would otherwise hold the stop for the host's whole shutdown timeout and hide the test's failure.
    /// </summary>
    private static readonly TimeSpan s_stopGrace = TimeSpan.FromSeconds(3);

    private readonly TestServer _server;

    private FaultHost(TestServer server) => _server = server;

    public WebApplication App => _server.App;

    public int Port => _server.Port;

    public Uri BaseAddress => _server.BaseAddress;

    public static async Task<FaultHost> StartAsync(
        AcceptStrategy strategy,
        ServerConnections connections,
        Action<WebApplication> map,
        Action<WebApplicationBuilder>? build = null,
        CapturedLogs? logs = null,
        IReadOnlyDictionary<string, string?>? settings = null)
    {
        var app = TestServer.Build(
            o =>
            {
                o.Strategy = strategy;
                o.Acceptors = 2;
            },
            builder =>
            {
                if (settings is not null)
                {
                    builder.Configuration.AddInMemoryCollection(settings);
                }

                if (logs is not null)
                {
                    builder.Logging.AddProvider(logs);
                }

                builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Use(connections.Middleware)));
                build?.Invoke(builder);
            });
        map(app);
        return new FaultHost(await TestServer.StartAsync(app));
    }

    public async ValueTask DisposeAsync()
    {
        using (var grace = new CancellationTokenSource(s_stopGrace))
        {
            await _server.App.StopAsync(grace.Token).WaitAsync(TestServer.Timeout);
        }

        await _server.DisposeAsync();
    }
}
