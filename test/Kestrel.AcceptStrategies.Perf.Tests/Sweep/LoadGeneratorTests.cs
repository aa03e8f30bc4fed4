using Kestrel.AcceptStrategies.Sweep;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>The real ab and wrk (installed by .ci/run) against a real Kestrel host, parsed as the sweep parses them.</summary>
public sealed class LoadGeneratorTests
{
    [Theory]
    [InlineData("ab-close")]
    [InlineData("ab-keepalive")]
    [InlineData("wrk-close")]
    [InlineData("wrk-keepalive")]
    public async Task RunAsync_RealTool_ParsesItsReport(string modeName)
    {
        var mode = LoadMode.All.Single(m => m.Name == modeName);
        await using var server = await TestServer.StartAsync(o => o.Acceptors = 2);
        var generator = new LoadGenerator(ns: null, connections: 4, abRequests: 400, wrkSeconds: 1);

        await WarmAsync(new Uri(server.BaseAddress, "/foo"));

        var result = await generator.RunAsync(mode, new Uri(server.BaseAddress, "/foo"));

        if (mode.Tool == "ab")
        {
            Assert.Equal(400, result.Completed);
        }
        else
        {
            Assert.True(result.Completed > 0, $"wrk counted {result.Completed} requests");
        }

        Assert.Equal(0, result.Failed);
        Assert.True(result.RequestsPerSecond > 0);
        Assert.True(result.P99Milliseconds >= result.P50Milliseconds, $"p50 {result.P50Milliseconds} ms, p99 {result.P99Milliseconds} ms");
    }

    [Theory]
    [InlineData("ab-close")]
    [InlineData("wrk-keepalive")]
    public async Task RunAsync_MissingPath_CountsEveryAnswerAsFailed(string modeName)
    {
        var mode = LoadMode.All.Single(m => m.Name == modeName);
        await using var server = await TestServer.StartAsync(o => o.Acceptors = 1);
        var generator = new LoadGenerator(ns: null, connections: 2, abRequests: 100, wrkSeconds: 1);

        await WarmAsync(new Uri(server.BaseAddress, "/missing"));

        var result = await generator.RunAsync(mode, new Uri(server.BaseAddress, "/missing"));

        Assert.True(result.Completed > 0);
        Assert.Equal(result.Completed, result.Failed);
    }

    /// <summary>
    /// One request first: a cold host's first answer (JIT, on a machine busy with the other tests' processes) can take
    /// longer than a 1 s wrk run, which then counts nothing.
    /// </summary>
    private static async Task WarmAsync(Uri url)
    {
        using var client = Load.CreateClient();
        using var response = await client.GetAsync(url);
    }
}
