using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// What Kestrel's socket transport keeps internal but its listener uses, read the way its listener reads it, so both
/// connection kinds behave as <c>UseSockets()</c> does: <c>FinOnError</c> (from the AppContext switch
/// <see cref="FinOnErrorSwitch"/>) and the connection factory's options built from <see cref="SocketTransportOptions"/>.
/// </summary>
internal static class SocketTransportInternals
{
    public const string FinOnErrorSwitch = "Microsoft.AspNetCore.Server.Kestrel.FinOnError";

    /// <summary>Whether an aborted connection ends with FIN (the switch is on) rather than RST (Kestrel's default since 9.0).</summary>
    public static bool FinOnError(SocketTransportOptions options)
    {
        try
        {
            return GetFinOnError(options);
        }
        catch (MissingMethodException)
        {
            // A Kestrel without the internal property: the switch it was read from.
            return AppContext.TryGetSwitch(FinOnErrorSwitch, out var on) && on;
        }
    }

    /// <summary>The options Kestrel's own listener gives its <see cref="SocketConnectionContextFactory"/> (FinOnError and the memory pool included).</summary>
    public static SocketConnectionFactoryOptions FactoryOptions(SocketTransportOptions options)
    {
        try
        {
            return CreateFactoryOptions(options);
        }
        catch (MissingMethodException)
        {
            return new SocketConnectionFactoryOptions
            {
                IOQueueCount = options.IOQueueCount,
                WaitForDataBeforeAllocatingBuffer = options.WaitForDataBeforeAllocatingBuffer,
                MaxReadBufferSize = options.MaxReadBufferSize,
                MaxWriteBufferSize = options.MaxWriteBufferSize,
                UnsafePreferInlineScheduling = options.UnsafePreferInlineScheduling,
            };
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_FinOnError")]
    private static extern bool GetFinOnError(SocketTransportOptions options);

    [UnsafeAccessor(UnsafeAccessorKind.Constructor)]
    private static extern SocketConnectionFactoryOptions CreateFactoryOptions(SocketTransportOptions options);
}
