using System.Text;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>
/// A status-view request head, parsed as little as HTTP/1.x allows: the request line decides everything; headers are
/// read (to the blank line) and ignored. <see cref="Status"/> 200 means answer with <see cref="Text"/> or JSON.
/// </summary>
internal readonly record struct StatusRequest(int Status, bool Text = false, bool HeadOnly = false, string Detail = "")
{
    /// <summary>The length of the head including its blank line, or -1 if it has not all arrived.</summary>
    public static int HeadLength(ReadOnlySpan<byte> received)
    {
        var crlf = received.IndexOf("\r\n\r\n"u8);
        var lf = received.IndexOf("\n\n"u8);
        return crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    }

    public static StatusRequest Parse(ReadOnlySpan<byte> head)
    {
        var end = head.IndexOf((byte)'\n');
        var line = (end >= 0 ? head[..end] : head).TrimEnd((byte)'\r');
        if (line.IndexOfAnyExceptInRange((byte)0x20, (byte)0x7e) >= 0)
        {
            return new(400, Detail: "the request line is not printable ASCII");
        }

        var parts = Encoding.ASCII.GetString(line).Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || parts[1].Length == 0)
        {
            return new(400, Detail: "not an HTTP/1.x request line");
        }

        var (method, target) = (parts[0], parts[1]);
        if (method is not ("GET" or "HEAD"))
        {
            return new(405, Detail: $"method {method}");
        }

        var query = target.IndexOf('?', StringComparison.Ordinal);
        var path = query >= 0 ? target[..query] : target;
        if (path != "/")
        {
            return new(404, Detail: "the status view is at /");
        }

        var text = query < 0 ? "" : target[(query + 1)..];
        return text switch
        {
            "" or "format=json" => new(200, HeadOnly: method == "HEAD"),
            "format=text" => new(200, Text: true, HeadOnly: method == "HEAD"),
            _ => new(400, Detail: $"unknown query '{text}': use ?format=text or ?format=json"),
        };
    }
}
