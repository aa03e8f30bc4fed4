using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// Puts Kestrel on a <see cref="TestTransport"/>: <see cref="TestTransport.Sockets"/> is Kestrel as it comes
/// (<c>UseSockets()</c>); the others add <c>UseAcceptStrategy(o =&gt; o.Strategy = …)</c> and change nothing else, so
/// every other setting is the default an app would get; the two <c>…Inline</c> ones also set the socket transport's
/// <c>UnsafePreferInlineScheduling</c>.
/// </summary>
public static class TransportSelector
{
    /// <summary>A generic host builder whose web host runs Kestrel on <paramref name="transport"/>.</summary>
    public static IHostBuilder GetHostBuilder(TestTransport transport) =>
        new HostBuilder().ConfigureWebHost(web => web.UseTestTransport(transport));

    /// <summary>
    /// Kestrel on <paramref name="transport"/> for a web host builder made elsewhere. A later
    /// <c>UseKestrel(options =&gt; …)</c> keeps the transport chosen here.
    /// </summary>
    public static IWebHostBuilder UseTestTransport(this IWebHostBuilder builder, TestTransport transport)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // Kestrel and its socket transport first: Kestrel takes the listener factory registered last, so the accept
        // strategy added below is the one used, whatever UseKestrel(…) the caller adds afterwards.
        builder.UseKestrel().UseSockets();
        return transport switch
        {
            TestTransport.Sockets => builder,
            TestTransport.ReusePort => builder.UseAcceptStrategy(o => o.Strategy = AcceptStrategy.ReusePort),
            TestTransport.ThunderingHerd => builder.UseAcceptStrategy(o => o.Strategy = AcceptStrategy.ThunderingHerd),
            TestTransport.Serialized => builder.UseAcceptStrategy(o => o.Strategy = AcceptStrategy.Serialized),
            TestTransport.SocketsInline => builder.UseSockets(o => o.UnsafePreferInlineScheduling = true),
            TestTransport.ReusePortInline => builder.UseSockets(o => o.UnsafePreferInlineScheduling = true).UseAcceptStrategy(o => o.Strategy = AcceptStrategy.ReusePort),
            _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, "Not a transport the harness knows."),
        };
    }
}
