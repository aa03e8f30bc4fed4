using System.Globalization;
using System.Net;
using System.Text;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// <c>WorkerProcesses:StatusEndpoint</c> parsed: a loopback TCP endpoint or an absolute Unix socket path. Anything a
/// client off the machine could reach, or that would need TLS, is refused, so the view never needs authentication.
/// </summary>
internal sealed class StatusEndpointAddress
{
    // sockaddr_un.sun_path is 108 bytes with its terminating NUL.
    public const int MaxUnixPathBytes = 107;

    private const string Expected = "expected http://127.0.0.1:PORT (any 127.0.0.0/8 address), http://[::1]:PORT, http://localhost:PORT or unix:/absolute/path";

    private StatusEndpointAddress(IPEndPoint? ip, string? unixPath)
    {
        Ip = ip;
        UnixPath = unixPath;
    }

    /// <summary>The TCP endpoint to bind (port 0 for any free port); null for a Unix socket.</summary>
    public IPEndPoint? Ip { get; }

    /// <summary>The Unix socket's absolute path; null for TCP.</summary>
    public string? UnixPath { get; }

    /// <summary>As a user writes it, with <paramref name="port"/> in place of the configured port when given.</summary>
    public string Display(int? port = null) => UnixPath is { } path
        ? "unix:" + path
        : string.Create(CultureInfo.InvariantCulture, $"http://{(Ip!.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "[" + Ip.Address + "]" : Ip.Address.ToString())}:{port ?? Ip.Port}");

    public override string ToString() => Display();

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says what is wrong, for the options error list.</summary>
    public static bool TryParse(string text, out StatusEndpointAddress? address, out string error)
    {
        address = null;
        error = "";
        if (text.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            var path = text["unix:".Length..];
            error = path switch
            {
                _ when !path.StartsWith('/') => "a Unix socket path must be absolute (unix:/run/app/status.sock)",
                _ when path.EndsWith('/') => "a Unix socket path must name a file, not a directory",
                _ when path.Contains('\0', StringComparison.Ordinal) => "a Unix socket path cannot contain NUL",
                _ when Encoding.UTF8.GetByteCount(path) > MaxUnixPathBytes => $"a Unix socket path is at most {MaxUnixPathBytes} bytes",
                _ => "",
            };
            address = error.Length == 0 ? new StatusEndpointAddress(null, path) : null;
            return address is not null;
        }

        if (text.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            error = "https is not served: the status view is plain HTTP on a loopback address or a Unix socket, which never leaves the machine";
            return false;
        }

        if (!text.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            error = Expected;
            return false;
        }

        var authority = text["http://".Length..];
        if (authority.EndsWith('/'))
        {
            authority = authority[..^1];
        }

        if (authority.IndexOfAny(['/', '?', '#', '@', ' ']) >= 0)
        {
            error = "only a scheme, a host and a port: no path, query, fragment or user (the view answers GET / and GET /?format=text)";
            return false;
        }

        var colon = authority.LastIndexOf(':');
        if (colon < 0 || (authority.StartsWith('[') && colon < authority.IndexOf(']', StringComparison.Ordinal)))
        {
            error = "the port is missing (use :0 for any free port, logged at start)";
            return false;
        }

        var host = authority[..colon];
        var portText = authority[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
        {
            error = $"'{portText}' is not a port (0 to {IPEndPoint.MaxPort})";
            return false;
        }

        if (Loopback(host) is not { } ip)
        {
            error = $"'{host}' is not a loopback address: the status view is served only on 127.0.0.0/8, [::1], localhost or a Unix socket, never to the network";
            return false;
        }

        address = new StatusEndpointAddress(new IPEndPoint(ip, port), null);
        return true;
    }

    /// <summary>A loopback address written plainly (dotted quad, [::1], localhost), or null.</summary>
    private static IPAddress? Loopback(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            // One address, not whatever the resolver lists first: the view is bound once and logged as bound.
            return IPAddress.Loopback;
        }

        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            return IPAddress.TryParse(host[1..^1], out var v6) && v6.Equals(IPAddress.IPv6Loopback) ? IPAddress.IPv6Loopback : null;
        }

        // Four decimal parts only: IPAddress.TryParse also takes "127.1" and "0x7f.1", which nobody means here.
        var parts = host.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit))
            && IPAddress.TryParse(host, out var v4) && v4.GetAddressBytes()[0] == 127
            ? v4
            : null;
    }
}
