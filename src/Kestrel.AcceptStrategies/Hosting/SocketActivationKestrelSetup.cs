using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Tells Kestrel to listen on the activated sockets' addresses; the binders then take the passed socket instead of
/// binding. Like any explicit <c>Listen</c>, this replaces the URLs (Kestrel logs "Overriding address(es)").
/// </summary>
internal sealed class SocketActivationKestrelSetup(SocketActivation activation, ILoggerFactory loggerFactory) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions options)
    {
        if (activation.IgnoredPid is not null)
        {
            AcceptStrategyLog.SocketActivationIgnored(loggerFactory.CreateLogger(AcceptStrategyLog.HostingCategory), activation.IgnoredPid, Environment.ProcessId);
            return;
        }

        foreach (var endpoint in activation.EndPoints)
        {
            options.Listen(endpoint);
        }
    }
}
