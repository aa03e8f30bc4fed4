using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>Against output that ab 2.3 (Debian apache2-utils) printed on the development machine, kept under Fixtures/.</summary>
public sealed class AbOutputParserTests
{
    [Fact]
    public void Parse_ConnectionClose_ReadsEveryField()
    {
        var result = AbOutputParser.Parse(Fixture.Read("ab-close.txt"));

        Fixture.AssertResult(result, completed: 2000, failed: 0, rps: 9101.21, p50: 0, p99: 1);
    }

    [Fact]
    public void Parse_KeepAlive_ReadsEveryField()
    {
        var result = AbOutputParser.Parse(Fixture.Read("ab-keepalive.txt"));

        Fixture.AssertResult(result, completed: 5000, failed: 0, rps: 21504.64, p50: 0, p99: 0);
    }

    [Fact]
    public void Parse_Non2xx_CountsThemAsFailed()
    {
        // ab itself says "Failed requests: 0" for 404s; they are on their own "Non-2xx responses" line.
        var result = AbOutputParser.Parse(Fixture.Read("ab-404.txt"));

        Fixture.AssertResult(result, completed: 500, failed: 500, rps: 8765.62, p50: 0, p99: 2);
    }

    [Fact]
    public void Parse_ConnectAndLengthFailures_AddsThemToNon2xx()
    {
        var output = Fixture.Read("ab-close.txt").Replace(
            "Failed requests:        0\n", "Failed requests:        7\n   (Connect: 2, Receive: 0, Length: 5, Exceptions: 0)\nNon-2xx responses:      3\n", StringComparison.Ordinal);

        var result = AbOutputParser.Parse(output);
        Assert.Equal(10, result.Failed);
        Assert.Equal("connect 2 length 5 non-2xx 3", result.FailureKinds);
        Assert.Equal("", AbOutputParser.Parse(Fixture.Read("ab-close.txt")).FailureKinds);
    }

    [Fact]
    public void Parse_NotAbOutput_ThrowsNamingWhatIsMissing()
    {
        var e = Assert.Throws<FormatException>(() => AbOutputParser.Parse("apr_socket_recv: Connection refused (111)\n"));

        Assert.Contains("Complete requests", e.Message, StringComparison.Ordinal);
        Assert.Contains("Connection refused", e.Message, StringComparison.Ordinal);
    }
}
