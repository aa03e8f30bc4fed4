using System.Net;
using Kestrel.AcceptStrategies.Internal;

namespace Kestrel.AcceptStrategies.Tests.Internal;

/// <summary>StatusEndpoint's text: loopback HTTP or an absolute Unix path, nothing a client off the machine could reach.</summary>
public sealed class StatusEndpointAddressTests
{
    [Theory]
    [InlineData("http://127.0.0.1:9100", "127.0.0.1", 9100, "http://127.0.0.1:9100")]
    [InlineData("http://127.0.0.1:9100/", "127.0.0.1", 9100, "http://127.0.0.1:9100")]
    [InlineData("http://127.8.9.10:0", "127.8.9.10", 0, "http://127.8.9.10:0")]
    [InlineData("HTTP://localhost:65535", "127.0.0.1", 65535, "http://127.0.0.1:65535")]
    [InlineData("http://[::1]:9100", "::1", 9100, "http://[::1]:9100")]
    public void TryParse_Loopback_Tcp(string text, string address, int port, string display)
    {
        Assert.True(StatusEndpointAddress.TryParse(text, out var parsed, out var error), error);

        Assert.Equal(new IPEndPoint(IPAddress.Parse(address), port), parsed!.Ip);
        Assert.Null(parsed.UnixPath);
        Assert.Equal(display, parsed.Display());
    }

    [Fact]
    public void TryParse_AbsoluteUnixPath()
    {
        Assert.True(StatusEndpointAddress.TryParse("unix:/run/app/status.sock", out var parsed, out _));

        Assert.Equal("/run/app/status.sock", parsed!.UnixPath);
        Assert.Null(parsed.Ip);
        Assert.Equal("unix:/run/app/status.sock", parsed.Display());
    }

    [Theory]
    [InlineData("http://10.0.0.1:9100", "'10.0.0.1' is not a loopback address")]
    [InlineData("http://0.0.0.0:9100", "'0.0.0.0' is not a loopback address")]
    [InlineData("http://[::]:9100", "'[::]' is not a loopback address")]
    [InlineData("http://example.com:9100", "'example.com' is not a loopback address")]
    [InlineData("http://127.1:9100", "'127.1' is not a loopback address")]
    [InlineData("http://[::ffff:127.0.0.1]:9100", "is not a loopback address")]
    [InlineData("https://127.0.0.1:9100", "https is not served")]
    [InlineData("unix:run/status.sock", "must be absolute")]
    [InlineData("unix:/run/app/", "must name a file")]
    [InlineData("garbage", "expected http://127.0.0.1:PORT")]
    [InlineData("127.0.0.1:9100", "expected http://127.0.0.1:PORT")]
    [InlineData("tcp://127.0.0.1:9100", "expected http://127.0.0.1:PORT")]
    [InlineData("http://127.0.0.1:9100/status", "no path, query")]
    [InlineData("http://127.0.0.1:9100?format=text", "no path, query")]
    [InlineData("http://user@127.0.0.1:9100", "no path, query")]
    [InlineData("http://127.0.0.1", "the port is missing")]
    [InlineData("http://[::1]", "the port is missing")]
    [InlineData("http://127.0.0.1:65536", "'65536' is not a port")]
    [InlineData("http://127.0.0.1:-1", "'-1' is not a port")]
    [InlineData("http://127.0.0.1:", "'' is not a port")]
    public void TryParse_Refused_SaysWhy(string text, string expected)
    {
        Assert.False(StatusEndpointAddress.TryParse(text, out var parsed, out var error));

        Assert.Null(parsed);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_UnixPathLongerThanSunPath_Refused()
    {
        var path = "/" + new string('a', StatusEndpointAddress.MaxUnixPathBytes);

        Assert.False(StatusEndpointAddress.TryParse("unix:" + path, out _, out var error));
        Assert.Contains("at most 107 bytes", error, StringComparison.Ordinal);
        Assert.True(StatusEndpointAddress.TryParse("unix:" + path[..^1], out _, out _));
    }
}
