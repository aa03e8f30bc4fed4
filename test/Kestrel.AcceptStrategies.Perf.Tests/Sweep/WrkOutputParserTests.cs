using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>Against output that wrk 4.1.0 (Debian) printed on the development machine, kept under Fixtures/.</summary>
public sealed class WrkOutputParserTests
{
    [Fact]
    public void Parse_ConnectionClose_ReadsEveryField()
    {
        var result = WrkOutputParser.Parse(Fixture.Read("wrk-close.txt"));

        Fixture.AssertResult(result, completed: 9679, failed: 0, rps: 8799.59, p50: 0.323, p99: 2.90);
    }

    [Fact]
    public void Parse_KeepAlive_ConvertsMicroseconds()
    {
        var result = WrkOutputParser.Parse(Fixture.Read("wrk-keepalive.txt"));

        Fixture.AssertResult(result, completed: 47289, failed: 0, rps: 42925.61, p50: 0.078, p99: 1.35);
    }

    [Fact]
    public void Parse_TimeoutsAndNon2xx_CountsBoth()
    {
        // /slow?ms=1500 with --timeout 1s: every answer came too late ("Socket errors: ... timeout 8").
        Fixture.AssertResult(WrkOutputParser.Parse(Fixture.Read("wrk-timeouts.txt")), completed: 8, failed: 8, rps: 2.66, p50: 0, p99: 0);
        Fixture.AssertResult(WrkOutputParser.Parse(Fixture.Read("wrk-404.txt")), completed: 73185, failed: 73185, rps: 66575.46, p50: 0.046, p99: 0.639);

        // By kind, so a failure in a long sweep says what it was.
        Assert.Equal("timeout 8", WrkOutputParser.Parse(Fixture.Read("wrk-timeouts.txt")).FailureKinds);
        Assert.Equal("non-2xx 73185", WrkOutputParser.Parse(Fixture.Read("wrk-404.txt")).FailureKinds);
        Assert.Equal("", WrkOutputParser.Parse(Fixture.Read("wrk-close.txt")).FailureKinds);
    }

    [Fact]
    public void Parse_WithoutLatencyFlag_SaysSo()
    {
        // What wrk prints without --latency: the same report minus the distribution block.
        var withoutDistribution = System.Text.RegularExpressions.Regex.Replace(
            Fixture.Read("wrk-close.txt"), @"  Latency Distribution\n(\s+\d+%.*\n)+", "");
        Assert.Contains("requests in", withoutDistribution, StringComparison.Ordinal);
        Assert.DoesNotContain("99%", withoutDistribution, StringComparison.Ordinal);

        var e = Assert.Throws<FormatException>(() => WrkOutputParser.Parse(withoutDistribution));

        Assert.Contains("--latency", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("812.00", "us", 0.812)]
    [InlineData("1.23", "ms", 1.23)]
    [InlineData("2.00", "s", 2000)]
    [InlineData("1.50", "m", 90_000)]
    public void ToMilliseconds_EveryUnit_Converts(string value, string unit, double expected) =>
        Assert.Equal(expected, WrkOutputParser.ToMilliseconds(value, unit), 9);
}
