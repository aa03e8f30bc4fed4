using System.Text;
using Kestrel.AcceptStrategies.Supervisor.Status;

namespace Kestrel.AcceptStrategies.Tests.Supervisor.Status;

/// <summary>The status view's request parsing: GET / only, ?format=text or json, everything else refused with its code.</summary>
public sealed class StatusRequestTests
{
    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 200, false, false)]
    [InlineData("GET /?format=json HTTP/1.1\r\n\r\n", 200, false, false)]
    [InlineData("GET /?format=text HTTP/1.0\r\n\r\n", 200, true, false)]
    [InlineData("HEAD /?format=text HTTP/1.1\r\n\r\n", 200, true, true)]
    [InlineData("GET / HTTP/1.1\n\n", 200, false, false)]
    [InlineData("POST / HTTP/1.1\r\n\r\n", 405, false, false)]
    [InlineData("DELETE /?format=text HTTP/1.1\r\n\r\n", 405, false, false)]
    [InlineData("GET /status HTTP/1.1\r\n\r\n", 404, false, false)]
    [InlineData("GET /?format=xml HTTP/1.1\r\n\r\n", 400, false, false)]
    [InlineData("GET / HTTP/2.0\r\n\r\n", 400, false, false)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, false, false)]
    [InlineData("GET /\r\n\r\n", 400, false, false)]
    [InlineData("GET  / HTTP/1.1\r\n\r\n", 400, false, false)]
    [InlineData("\u0016\u0003\u0001 / HTTP/1.1\r\n\r\n", 400, false, false)]
    public void Parse(string head, int status, bool text, bool headOnly)
    {
        var request = StatusRequest.Parse(Encoding.Latin1.GetBytes(head));

        Assert.Equal(status, request.Status);
        Assert.Equal(text, request.Text);
        Assert.Equal(headOnly, request.HeadOnly);
        Assert.Equal(status == 200, request.Detail.Length == 0);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n", -1)]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27)]
    [InlineData("GET / HTTP/1.1\n\nrest", 16)]
    [InlineData("", -1)]
    public void HeadLength_EndsAtTheBlankLine(string received, int expected) =>
        Assert.Equal(expected, StatusRequest.HeadLength(Encoding.ASCII.GetBytes(received)));
}
