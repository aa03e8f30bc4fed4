using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// What a test may change about the host <see cref="RunningServer.StartAsync"/> builds; everything else stays at the
/// defaults an app gets (except the Server response header, which is off so expected responses need not list it).
/// </summary>
public sealed class ServerSetup
{
    /// <summary>The address of the one endpoint, on port 0 (default 127.0.0.1).</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>
    /// Changes to Kestrel's limits. The transport's read buffer limit
    /// (<c>SocketTransportOptions.MaxReadBufferSize</c>, which the accept strategies read too) always follows
    /// <see cref="KestrelServerLimits.MaxRequestBufferSize"/>, as it would if the app set both alike.
    /// </summary>
    public Action<KestrelServerLimits>? Limits { get; init; }

    /// <summary>Connection middleware or TLS for the endpoint (<c>listenOptions.Use…</c>).</summary>
    public Action<ListenOptions>? Endpoint { get; init; }

    /// <summary>A meter factory to give the host instead of its own, e.g. a <see cref="KestrelMetricsCapture"/>.</summary>
    public IMeterFactory? Meters { get; init; }
}
