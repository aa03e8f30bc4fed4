using System.Net.Sockets;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// The event-loop connections log what Kestrel's socket transport logs (SocketsLog's event names), at Debug under
/// <c>Kestrel.AcceptStrategies.Connections</c> with ids 80-87, each naming the connection. Serialized serves Kestrel's
/// own SocketConnection: the same scenarios there must raise Kestrel's events under its category (a check of the
/// scenarios themselves).
/// </summary>
[Collection(ConnectionFaults.Name)]
public sealed class TransportLogTests
{
    private const string Category = "Kestrel.AcceptStrategies.Connections";
    private const string KestrelCategory = "Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets";
    private static readonly TimeSpan s_eventTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Debug for the transport's category (the library's or Kestrel's), as a user would set it in appsettings.json.</summary>
    private static readonly Dictionary<string, string?> s_debugTransport = new()
    {
        [$"Logging:LogLevel:{Category}"] = "Debug",
        [$"Logging:LogLevel:{KestrelCategory}"] = "Debug",
    };

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task ClientHalfCloses_ConnectionReadFinIsLogged(AcceptStrategy strategy)
    {
        await using var scenario = await Scenario.StartAsync(strategy);
        using var client = await scenario.ConnectAndRequestAsync();

        client.Socket.Shutdown(SocketShutdown.Send);

        await scenario.AssertLoggedAsync(82, "ConnectionReadFin");
    }

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task ClientResets_ConnectionResetIsLogged(AcceptStrategy strategy)
    {
        await using var scenario = await Scenario.StartAsync(strategy);
        using var client = await scenario.ConnectAndRequestAsync();

        client.Socket.Reset();

        await scenario.AssertLoggedAsync(85, "ConnectionReset");
    }

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task ServerClosesGracefully_ConnectionWriteFinIsLogged(AcceptStrategy strategy)
    {
        await using var scenario = await Scenario.StartAsync(strategy);

        // Connection: close: Kestrel completes its output after the response, and the transport sends a FIN.
        using var client = await scenario.ConnectAndRequestAsync("GET /foo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.Equal("EOF", await client.ReadToEndAsync(scenario.Token));

        await scenario.AssertLoggedAsync(83, "ConnectionWriteFin");
    }

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task HttpContextAbort_ConnectionWriteRstIsLogged(AcceptStrategy strategy)
    {
        await using var scenario = await Scenario.StartAsync(strategy, app => app.MapGet("/abort", (HttpContext context) => context.Abort()));

        using var client = await scenario.ConnectAsync();
        await client.SendAsync("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n", scenario.Token);
        await client.ReadToEndAsync(scenario.Token);

        await scenario.AssertLoggedAsync(84, "ConnectionWriteRst");
    }

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task UploadToASlowReader_ConnectionPauseThenResumeAreLogged(AcceptStrategy strategy)
    {
        // 1 MB against a 16 KB MaxReadBufferSize, while the app does not read: the transport's input pipe fills and
        // reading pauses; the app then reads it all, and reading resumes.
        const int Upload = 1024 * 1024;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var scenario = await Scenario.StartAsync(
            strategy,
            app => app.MapPost("/upload", async (HttpContext context) =>
            {
                await release.Task;
                var buffer = new byte[4096];
                long length = 0;
                int n;
                while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
                {
                    length += n;
                }

                await context.Response.WriteAsync($"{length}");
            }),
            builder => builder.WebHost.UseSockets(o => o.MaxReadBufferSize = 16 * 1024));

        using var client = await scenario.ConnectAsync();
        var send = client.SendAsync($"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {Upload}\r\n\r\n{new string('u', Upload)}", scenario.Token);

        var pause = await scenario.AssertLoggedAsync(80, "ConnectionPause");
        release.TrySetResult();
        await send;
        Assert.Equal((200, $"{Upload}"), await client.ReadResponseAsync(scenario.Token));
        var resume = await scenario.AssertLoggedAsync(81, "ConnectionResume");

        var entries = scenario.Logs.Entries;
        Assert.True(IndexOf(entries, pause) < IndexOf(entries, resume), "ConnectionResume was logged before ConnectionPause");
    }

    private static int IndexOf(IReadOnlyList<LogEntry> entries, LogEntry entry)
    {
        for (var i = 0; i < entries.Count; i++)
        {
            if (ReferenceEquals(entries[i], entry))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>A host with a capturing provider, one client, and the server's connection it made.</summary>
    private sealed class Scenario : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts = new(TestServer.Timeout);
        private readonly AcceptStrategy _strategy;
        private readonly ServerConnections _connections;
        private readonly FaultHost _server;
        private Task<ServerConnection>? _connection;

        private Scenario(AcceptStrategy strategy, ServerConnections connections, CapturedLogs logs, FaultHost server)
        {
            _strategy = strategy;
            _connections = connections;
            Logs = logs;
            _server = server;
        }

        public CapturedLogs Logs { get; }

        public CancellationToken Token => _cts.Token;

        public static async Task<Scenario> StartAsync(AcceptStrategy strategy, Action<WebApplication>? map = null, Action<WebApplicationBuilder>? build = null)
        {
            var connections = new ServerConnections(strategy);
            var logs = new CapturedLogs();
            var server = await FaultHost.StartAsync(strategy, connections, map ?? (_ => { }), build, logs, s_debugTransport);
            return new Scenario(strategy, connections, logs, server);
        }

        public async Task<RawHttpClient> ConnectAsync()
        {
            var client = await RawHttpClient.ConnectAsync(_server.Port, Token);
            try
            {
                // The server's side reaches the middleware once the first bytes have arrived (TCP_DEFER_ACCEPT).
                _connection = _connections.ForClientAsync(client.Socket.LocalPort(), Token);
                return client;
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }

        /// <summary>Connects and completes one request (by default GET /foo on a keep-alive connection).</summary>
        public async Task<RawHttpClient> ConnectAndRequestAsync(string request = "GET /foo HTTP/1.1\r\nHost: x\r\n\r\n")
        {
            var client = await ConnectAsync();
            try
            {
                await client.SendAsync(request, Token);
                Assert.Equal((200, TestServer.Body), await client.ReadResponseAsync(Token));
                return client;
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Waits for the event: under ReusePort and ThunderingHerd the library's <paramref name="id"/> under its
        /// category; under Serialized Kestrel's event of the same name under Kestrel's. Either at Debug, naming this connection.
        /// </summary>
        public async Task<LogEntry> AssertLoggedAsync(int id, string name)
        {
            var connectionId = (await (_connection ?? throw new InvalidOperationException("No client connected"))).Id;
            var native = _strategy != AcceptStrategy.Serialized;
            var category = native ? Category : KestrelCategory;
            var entry = await Logs.WaitForAsync(
                e => e.Category == category && e.EventId.Name == name && (!native || e.EventId.Id == id) && e.Carries(connectionId),
                s_eventTimeout,
                $"{name}{(native ? $" ({id})" : "")} under {category} for connection {connectionId}");
            Assert.Equal(LogLevel.Debug, entry.Level);
            return entry;
        }

        public async ValueTask DisposeAsync()
        {
            await _server.DisposeAsync();
            _cts.Dispose();
        }
    }
}
