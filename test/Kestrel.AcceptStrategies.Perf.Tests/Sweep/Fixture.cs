using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>Real ab and wrk output captured on the development machine (see Fixtures/README.md for the commands).</summary>
internal static class Fixture
{
    public static string Read(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    public static void AssertResult(LoadResult result, long completed, long failed, double rps, double p50, double p99)
    {
        Assert.Equal(completed, result.Completed);
        Assert.Equal(failed, result.Failed);
        Assert.Equal(rps, result.RequestsPerSecond, 6);
        Assert.Equal(p50, result.P50Milliseconds, 6);
        Assert.Equal(p99, result.P99Milliseconds, 6);
    }
}
