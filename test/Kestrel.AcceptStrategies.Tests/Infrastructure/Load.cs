using System.Net;
using System.Net.Http;
using System.Net.Sockets;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>Real HTTP load from a real client: bounded in count and time, every response checked.</summary>
internal static class Load
{
    /// <summary>HTTP/1.1 over the Unix socket at <paramref name="path"/>, a new connection per request (so each may meet another worker).</summary>
    public static HttpClient CreateUnixClient(string path) => new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.Zero,
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = TimeSpan.FromSeconds(20),
    };

    public static HttpClient CreateClient(int maxConnections = 1000) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = maxConnections,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        ConnectTimeout = TimeSpan.FromSeconds(10),
    })
    {
        Timeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>Sends <paramref name="total"/> GET /foo requests, <paramref name="concurrency"/> at a time; returns the failures.</summary>
    public static Task<IReadOnlyList<string>> RunAsync(Uri baseAddress, int total, int concurrency, bool connectionClose) =>
        RunAsync(baseAddress, total, concurrency, connectionClose, i => $"/foo?foo={i}&foo=bar", TestServer.Body);

    /// <summary>
    /// Sends <paramref name="total"/> GET requests to <paramref name="path"/>(i), <paramref name="concurrency"/> at a
    /// time, each answer checked against <paramref name="expectedBody"/>; returns the failures.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RunAsync(
        Uri baseAddress, int total, int concurrency, bool connectionClose, Func<int, string> path, string expectedBody, TimeSpan? limit = null)
    {
        using var client = CreateClient();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var cts = new CancellationTokenSource(limit ?? TimeSpan.FromSeconds(60));
        await Parallel.ForEachAsync(Enumerable.Range(0, total), new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cts.Token }, async (i, ct) =>
        {
            if (await SendAsync(client, new Uri(baseAddress, path(i)), connectionClose, expectedBody, ct) is { } failure)
            {
                failures.Enqueue($"request {i}: {failure}");
            }
        });
        return failures.ToArray();
    }

    /// <summary>
    /// Keeps <paramref name="concurrency"/> clients sending GET /foo until <paramref name="stop"/> fires (at most
    /// <paramref name="limit"/>); returns how many requests completed and the failures. <paramref name="progress"/>
    /// completes once <paramref name="progressAfter"/> requests have. <paramref name="path"/>(client, i) and
    /// <paramref name="expectedBody"/> replace /foo and its body.
    /// </summary>
    public static async Task<(long Completed, IReadOnlyList<string> Failures)> RunUntilAsync(
        Uri baseAddress, int concurrency, bool connectionClose, TimeSpan limit, CancellationToken stop,
        TaskCompletionSource? progress = null, int progressAfter = 0, Func<int, int, string>? path = null, string? expectedBody = null)
    {
        using var client = CreateClient();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long completed = 0;
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(stop);
        bounded.CancelAfter(limit);
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(c => Task.Run(async () =>
        {
            for (var i = 0; !bounded.IsCancellationRequested; i++)
            {
                // A request under way when the load stops still completes and is checked.
                var uri = new Uri(baseAddress, path?.Invoke(c, i) ?? $"/foo?foo={c}-{i}");
                if (await SendAsync(client, uri, connectionClose, expectedBody ?? TestServer.Body, CancellationToken.None) is { } failure)
                {
                    failures.Enqueue($"client {c} request {i}: {failure}");
                }

                if (Interlocked.Increment(ref completed) == progressAfter)
                {
                    progress?.TrySetResult();
                }
            }
        })));
        return (completed, failures.ToArray());
    }

    private static async Task<string?> SendAsync(HttpClient client, Uri uri, bool connectionClose, string expectedBody, CancellationToken ct)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.ConnectionClose = connectionClose;
            using var response = await client.SendAsync(request, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            return response.StatusCode != HttpStatusCode.OK || body != expectedBody || response.Content.Headers.ContentLength != expectedBody.Length
                ? $"{(int)response.StatusCode} '{body}'"
                : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
        {
            return $"{ex.GetType().Name}: {ex.Message}";
        }
    }

    public static async Task<string> GetAsync(Uri address)
    {
        using var client = CreateClient();
        return await client.GetStringAsync(address).WaitAsync(TestServer.Timeout);
    }
}
