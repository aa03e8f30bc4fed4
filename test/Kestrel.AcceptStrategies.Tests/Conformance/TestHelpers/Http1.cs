using System.Globalization;
using System.Text;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// HTTP/1.1 text the tests send and expect, as lines that <see cref="RawConnection.SendAsync"/> and
/// <see cref="RawConnection.ExpectAsync"/> join with CRLF. A request ends with two empty lines (the blank line and
/// the CRLF before it), a request with a body ends with the body.
/// </summary>
public static class Http1
{
    /// <summary>
    /// Stands for a <c>Date</c> header line in an expected response. Kestrel writes the real time, so the line is
    /// matched by shape: <c>Date: </c> and an RFC 1123 date (always 29 characters).
    /// </summary>
    public const string AnyDate = "Date: <RFC 1123 date>";

    private const string DatePrefix = "Date: ";

    /// <summary>The length of a real Date line: the prefix and "ddd, dd MMM yyyy HH:mm:ss GMT".</summary>
    private const int DateLineLength = 6 + 29;

    /// <summary><c>GET /</c> with an empty Host and, if given, a Connection header.</summary>
    public static string[] Get(string? connection = null) =>
        connection is null
            ? ["GET / HTTP/1.1", "Host:", "", ""]
            : ["GET / HTTP/1.1", "Host:", $"Connection: {connection}", "", ""];

    /// <summary><c>POST /</c> with a Content-Length, then <paramref name="body"/> (which may be shorter: the rest follows later or never).</summary>
    public static string[] Post(long contentLength, string body = "") =>
        ["POST / HTTP/1.1", "Host:", string.Create(CultureInfo.InvariantCulture, $"Content-Length: {contentLength}"), "", body];

    /// <summary>What Kestrel answers to a request its app completed without writing anything.</summary>
    public static string[] EmptyOk() => ["HTTP/1.1 200 OK", "Content-Length: 0", AnyDate, "", ""];

    /// <summary>What Kestrel answers when the app upgrades the connection.</summary>
    public static string[] SwitchingProtocols() => ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", AnyDate, "", ""];

    /// <summary>How many characters <paramref name="expected"/> stands for once each <see cref="AnyDate"/> is a real date line.</summary>
    internal static int ReceivedLength(string expected)
    {
        var dates = 0;
        for (var at = expected.IndexOf(AnyDate, StringComparison.Ordinal); at >= 0; at = expected.IndexOf(AnyDate, at + 1, StringComparison.Ordinal))
        {
            dates++;
        }

        return expected.Length + (dates * (DateLineLength - AnyDate.Length));
    }

    /// <summary>
    /// <paramref name="received"/> with each real date line that sits where <paramref name="expected"/> has
    /// <see cref="AnyDate"/> replaced by <see cref="AnyDate"/>; anything else is left as received, so comparing the
    /// result with <paramref name="expected"/> shows the first real difference.
    /// </summary>
    internal static string MaskDates(string expected, string received)
    {
        var masked = new StringBuilder(received.Length);
        var inExpected = 0;
        var inReceived = 0;
        while (true)
        {
            var date = expected.IndexOf(AnyDate, inExpected, StringComparison.Ordinal);
            var before = date - inExpected;
            if (date < 0 || inReceived + before + DateLineLength > received.Length)
            {
                break;
            }

            masked.Append(received, inReceived, before);
            var line = received.Substring(inReceived + before, DateLineLength);
            masked.Append(IsDateLine(line) ? AnyDate : line);
            inExpected = date + AnyDate.Length;
            inReceived += before + DateLineLength;
        }

        return masked.Append(received, inReceived, received.Length - inReceived).ToString();
    }

    private static bool IsDateLine(string line) =>
        line.StartsWith(DatePrefix, StringComparison.Ordinal)
        && DateTime.TryParseExact(line[DatePrefix.Length..], "r", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out _);
}
