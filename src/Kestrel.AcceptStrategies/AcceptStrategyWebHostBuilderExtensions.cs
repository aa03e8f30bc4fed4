using System.Runtime.Versioning;
using Kestrel.AcceptStrategies;
using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Worker;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>
/// Extension methods that replace Kestrel's accept loop for IP endpoints with an <see cref="AcceptStrategy"/>.
/// </summary>
/// <remarks>
/// Linux only, as the platform analyzer (CA1416) tells callers; on another OS start-up still fails with an options
/// validation error naming the OS rather than at the first accept.
/// </remarks>
[SupportedOSPlatform("linux")]
public static class AcceptStrategyWebHostBuilderExtensions
{

    /// <summary>
    /// Accepts Kestrel's IP endpoints with the strategy configured in the <c>AcceptStrategy</c> configuration section.
    /// Unix sockets, named pipes and file handles stay on Kestrel's own transport; with <c>Workers</c> &gt; 0 they are
    /// refused at start-up, because only IP endpoints can be handed to worker processes.
    /// </summary>
    /// <param name="builder">The web host builder.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseAcceptStrategy(this IWebHostBuilder builder) => builder.UseAcceptStrategy(static _ => { });

    /// <summary>
    /// Accepts Kestrel's IP endpoints with an <see cref="AcceptStrategy"/>: the <c>AcceptStrategy</c> configuration
    /// section is bound first, then <paramref name="configure"/> runs, so values set in code win.
    /// </summary>
    /// <param name="builder">The web host builder.</param>
    /// <param name="configure">Changes the options after configuration has been bound.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseAcceptStrategy(this IWebHostBuilder builder, Action<AcceptStrategyOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);

        // A worker takes its inherited descriptors out of reach of anything it starts, as early as possible. This is
        // the one read of the worker environment: the role and every worker part get it from the services.
        var worker = WorkerIdentity.ReadOnce();
        var activation = SocketActivation.ReadOnce(worker is not null);
        if (worker is not null)
        {
            AtomicConsole.Install();
        }

        return builder.ConfigureServices((context, services) =>
        {
            if (!services.Any(d => d.ServiceType == typeof(RoleListenerFactory)))
            {
                // A supervisor-to-be shares its output with its workers: its lines must not be split either. Decided
                // on a throwaway copy of the options (configuration, then code), before the logger takes the console.
                var section = context.Configuration.GetSection(AcceptStrategyOptions.SectionName);
                var probe = new AcceptStrategyOptions();
                new AcceptStrategyConfigureOptions(section).Configure(probe);
                configure(probe);
                if (probe.Workers > 0)
                {
                    AtomicConsole.Install();
                }

                if (probe.Workers > 0 || worker is not null)
                {
                    // Last registered, so Kestrel asks it before its own QUIC transport.
                    services.AddSingleton<IMultiplexedConnectionListenerFactory, QuicRefusal>();
                }

                // Registered before any code configuration so that code runs after the binding and wins.
                services.AddSingleton<IConfigureOptions<AcceptStrategyOptions>>(new AcceptStrategyConfigureOptions(section));
                services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AcceptStrategyOptions>, AcceptStrategyOptionsValidator>());
                services.AddOptions<AcceptStrategyOptions>().ValidateOnStart();
                services.AddMetrics();
                services.TryAddSingleton<AcceptStrategyMetrics>();
                services.AddSingleton<AcceptStrategyListenerFactory>();
                services.AddSingleton<SupervisorBinder>();
                services.AddSingleton<RoleListenerFactory>();
                services.AddSingleton(sp =>
                {
                    var options = sp.GetRequiredService<IOptions<AcceptStrategyOptions>>();
                    var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger(AcceptStrategyLog.HostingCategory);
                    return new AcceptStrategyProcess(() => ProcessRoles.Resolve(worker, options.Value, logger));
                });
                services.AddSingleton<SupervisorSockets>();
                if (worker is not null)
                {
                    services.AddAcceptStrategyWorker(worker);
                }

                if (activation is not null)
                {
                    services.AddSingleton(activation);
                    services.AddSingleton<IConfigureOptions<KestrelServerOptions>, SocketActivationKestrelSetup>();
                }

                services.AddHostedService<WorkerSupervisor>();
                services.AddSingleton<IConfigureOptions<HostOptions>, HostShutdownTimeout>();
                services.AddSingleton<IPostConfigureOptions<KestrelServerOptions>, KestrelReloadGuard>();

                // Kestrel asks its transports last-registered first; ours declines every endpoint that is not IP.
                services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<RoleListenerFactory>());
            }

            services.Configure(configure);
        });
    }
}
