using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>The services an <see cref="AcceptStrategyListenerFactory"/> needs, for tests that bind listeners directly.</summary>
internal static class ListenerServices
{
    public static ServiceProvider Create(AcceptStrategy strategy, int acceptors)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMetrics();
        services.AddOptions<SocketTransportOptions>();
        services.Configure<AcceptStrategyOptions>(o => { o.Strategy = strategy; o.Acceptors = acceptors; });
        services.AddSingleton<AcceptStrategyMetrics>();
        services.AddSingleton<AcceptStrategyListenerFactory>();
        return services.BuildServiceProvider();
    }
}
