using System.Net;
using System.Net.Http;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>Real HTTP load from a real client: bounded in count and time, every response checked.</summary>
internal static class Load
{
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
    public static async Task<IReadOnlyList<string>> RunAsync(Uri baseAddress, int total, int concurrency, bool connectionClose)
    {
        using var client = CreateClient();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Parallel.ForEachAsync(Enumerable.Range(0, total), new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cts.Token }, async (i, ct) =>
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseAddress, $"/foo?foo={i}&foo=bar"));
                request.Headers.ConnectionClose = connectionClose;
                using var response = await client.SendAsync(request, ct);
                var body = await response.Content.ReadAsStringAsync(ct);
                if (response.StatusCode != HttpStatusCode.OK || body != TestServer.Body || response.Content.Headers.ContentLength != TestServer.Body.Length)
                {
                    failures.Enqueue($"request {i}: {(int)response.StatusCode} '{body}'");
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
            {
                failures.Enqueue($"request {i}: {ex.GetType().Name}: {ex.Message}");
            }
        });
        return failures.ToArray();
    }

    public static async Task<string> GetAsync(Uri address)
    {
        using var client = CreateClient();
        return await client.GetStringAsync(address).WaitAsync(TestServer.Timeout);
    }
}
