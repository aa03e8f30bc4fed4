using System.Runtime.Versioning;
using Kestrel.AcceptStrategies;
using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Worker;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
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
    /// Accepts Kestrel's IP endpoints with the strategy configured in the <c>AcceptStrategy</c> configuration section,
    /// in this process. Unix sockets, named pipes and file handles stay on Kestrel's own transport.
    /// </summary>
    /// <param name="builder">The web host builder.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseAcceptStrategy(this IWebHostBuilder builder) => builder.UseAcceptStrategy(static _ => { });

    /// <summary>
    /// Accepts Kestrel's IP endpoints with an <see cref="AcceptStrategy"/>: the <c>AcceptStrategy</c> configuration
    /// section is bound first, then <paramref name="configure"/> runs, so values set in code win.
    /// </summary>
    /// <remarks>
    /// This registers services only. The options are checked, all at once, when the host starts; nothing in the
    /// process (environment, console, signals, runtime settings) is changed by a one-process app, except that sockets
    /// passed by systemd (socket activation) are taken, and with them its <c>LISTEN_*</c> variables.
    /// </remarks>
    /// <param name="builder">The web host builder.</param>
    /// <param name="configure">Changes the options after configuration has been bound.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseAcceptStrategy(this IWebHostBuilder builder, Action<AcceptStrategyOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);

        return builder.ConfigureServices((context, services) =>
        {
            if (!services.Any(d => d.ServiceType == typeof(RoleListenerFactory)))
            {
                // Registered before any code configuration so that code runs after the binding and wins.
                var section = context.Configuration.GetSection(AcceptStrategyOptions.SectionName);
                services.AddSingleton<IConfigureOptions<AcceptStrategyOptions>>(new SectionBinder<AcceptStrategyOptions>(
                    section, AcceptStrategyOptions.SectionName, static o => o.ConfigurationProblems, MovedKeys.ToWorkerProcesses));
                services.AddOptions<WorkerProcessOptions>();
                services.AddMetrics();
                services.AddSingleton<AcceptStrategyMetrics>();
                services.AddSingleton<AcceptStrategyListenerFactory>();
                services.AddSingleton<SupervisorBinder>();
                services.AddSingleton<SupervisorSockets>();
                services.AddSingleton<InheritedListeners>();
                services.AddSingleton<RoleListenerFactory>();
                services.AddSingleton(static sp =>
                {
                    var model = sp.GetService<WorkerProcessModel>();
                    var workers = sp.GetRequiredService<IOptions<WorkerProcessOptions>>();
                    var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger(AcceptStrategyLog.HostingCategory);
                    return new WorkerProcessInfo(() => ProcessRoles.Resolve(model, workers.Value, logger));
                });

                // Reading the environment changes nothing: the activated sockets are taken when Kestrel's options are built.
                var inWorker = WorkerIdentity.ReadOnce() is not null;
                if (SocketActivation.Present(inWorker))
                {
                    services.AddSingleton(_ => SocketActivation.ReadOnce(inWorker)
                        ?? throw new InvalidOperationException("systemd socket activation: the variables changed while the host was built."));
                    services.AddSingleton<IConfigureOptions<KestrelServerOptions>, SocketActivationKestrelSetup>();
                }

                services.AddHostedService<AcceptStrategyStartup>();
                services.AddSingleton<IConfigureOptions<HostOptions>, HostShutdownTimeout>();
                services.AddSingleton<IPostConfigureOptions<KestrelServerOptions>, KestrelReloadGuard>();

                // Kestrel asks its transports last-registered first; ours declines every endpoint that is not IP.
                services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<RoleListenerFactory>());
            }

            services.Configure(configure);
        });
    }
}
