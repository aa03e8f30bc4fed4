using System.Diagnostics;
using System.Net.Http;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// A client of the supervisor's status view, over TCP (<c>http://127.0.0.1:PORT</c>) or a Unix socket
/// (<c>unix:/path</c>, through <see cref="SocketsHttpHandler.ConnectCallback"/>), as the supervisor logged it (event 60).
/// </summary>
internal sealed class StatusClient : IDisposable
{
    private readonly HttpClient _client;

    public StatusClient(string address)
    {
        Address = address;
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10), PooledConnectionLifetime = TimeSpan.Zero };
        if (address.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = address["unix:".Length..];
            handler.ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
            _client = new HttpClient(handler) { BaseAddress = new Uri("http://localhost/") };
        }
        else
        {
            _client = new HttpClient(handler) { BaseAddress = new Uri(address) };
        }

        _client.Timeout = TimeSpan.FromSeconds(20);
    }

    public string Address { get; }

    /// <summary>The address the supervisor logged for its status view (event 60).</summary>
    public static async Task<StatusClient> OfAsync(ChildProcess supervisor) =>
        new((await supervisor.WaitForEventAsync(LogEvents.StatusEndpointListening, null, TestServer.Timeout))["Address"]);

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path) => _client.SendAsync(new HttpRequestMessage(method, path));

    public async Task<JsonObject> GetJsonAsync()
    {
        using var response = await _client.GetAsync("/");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(body)!.AsObject();
    }

    public Task<string> GetTextAsync() => _client.GetStringAsync("/?format=text");

    public static IReadOnlyList<int> Pids(JsonObject status) =>
        [.. status["workers"]!.AsArray().Select(w => (int)w!["pid"]!).Order()];

    public static long Requests(JsonObject status) => status["workers"]!.AsArray().Sum(w => (long)w!["requests"]!);

    /// <summary>Polls the status (no blind sleep: each poll is a round trip through the supervisor's loop) until <paramref name="condition"/> holds.</summary>
    public async Task<JsonObject> WaitUntilAsync(Func<JsonObject, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + Timestamps.Units(timeout, Stopwatch.Frequency);
        while (true)
        {
            var status = await GetJsonAsync();
            if (condition(status))
            {
                return status;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"Not reached within {timeout}: {what}. Last status: {status.ToJsonString()}");
            }

            // Heartbeats come every 100 ms while serving, so poll at that pace, not faster.
            await Task.Delay(100);
        }
    }

    public void Dispose() => _client.Dispose();
}
