using System.Runtime.Versioning;
using Kestrel.AcceptStrategies;
using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Protocol;
using Kestrel.AcceptStrategies.Supervisor;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Worker;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>
/// Extension methods that run the app as pre-started worker processes under a supervisor, as Starlet, gunicorn and
/// mod_perl do.
/// </summary>
[SupportedOSPlatform("linux")]
public static class WorkerProcessesWebHostBuilderExtensions
{
    /// <summary>
    /// Runs the app as the worker processes configured in the <c>WorkerProcesses</c> configuration section: with
    /// <c>Workers</c> &gt; 0 the process the user starts becomes a supervisor that binds every endpoint, serves nothing,
    /// and keeps that many copies of the app accepting on its sockets; with <c>Workers</c> = 0 (the default) the app
    /// is one process. Also applies <see cref="AcceptStrategyWebHostBuilderExtensions.UseAcceptStrategy(IWebHostBuilder)"/>,
    /// whose options the workers accept with.
    /// </summary>
    /// <param name="builder">The web host builder.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseWorkerProcesses(this IWebHostBuilder builder) => builder.UseWorkerProcesses(static _ => { });

    /// <summary>
    /// Runs the app as worker processes: the <c>WorkerProcesses</c> configuration section is bound first, then
    /// <paramref name="configure"/> runs, so values set in code win. See <see cref="UseWorkerProcesses(IWebHostBuilder)"/>.
    /// </summary>
    /// <remarks>
    /// This registers services. When the host starts, and only in worker mode, the process takes what its role
    /// needs: the supervisor its signal handlers (SIGHUP, SIGTTIN, SIGTTOU, SIGUSR2) and console writers that keep lines
    /// whole, a worker its inherited sockets. A worker process, or a supervisor's successor (SIGUSR2), never the process
    /// the user starts, also takes over, here, the signals its supervisor blocked when it started it. Named pipes, file
    /// handles and HTTP/3 are refused in worker mode: only TCP endpoints and Unix sockets can be handed to workers.
    /// </remarks>
    /// <param name="builder">The web host builder.</param>
    /// <param name="configure">Changes the options after configuration has been bound.</param>
    /// <returns>The web host builder.</returns>
    public static IWebHostBuilder UseWorkerProcesses(this IWebHostBuilder builder, Action<WorkerProcessOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);

        builder.UseAcceptStrategy();
        return builder.ConfigureServices((context, services) =>
        {
            if (!services.Any(d => d.ServiceType == typeof(WorkerProcessModel)))
            {
                // Read, not claimed: the host's start takes the descriptors (AcceptStrategyStartup). The one exception is
                // the terminal's signals, which the supervisor blocked at the spawn of a worker or of its successor
                // (SIGUSR2): every thread started from here on would pass the block on to the processes it starts, so
                // such a process takes them over now (a successor's own handlers replace the no-op ones when it starts).
                var worker = WorkerIdentity.ReadOnce();
                if (worker is not null || InheritedListeners.StartedByPredecessor)
                {
                    WorkerSignals.TakeOver();
                }

                var section = context.Configuration.GetSection(WorkerProcessOptions.SectionName);
                var binder = new SectionBinder<WorkerProcessOptions>(
                    section, WorkerProcessOptions.SectionName, static o => o.ConfigurationProblems, MovedKeys.ToAcceptStrategy);

                // Which services worker mode needs is decided on a throwaway copy of the options (configuration, then
                // code), before the logging that one of them changes exists; start-up refuses a role that disagrees.
                var probe = new WorkerProcessOptions();
                binder.Configure(probe);
                configure(probe);
                var workerMode = ProcessRoles.InWorkerMode(worker, probe);
                services.AddSingleton(new WorkerProcessModel(worker, workerMode));
                if (workerMode)
                {
                    // Last registered, so Kestrel asks it before its own QUIC transport.
                    services.AddSingleton<IMultiplexedConnectionListenerFactory, QuicRefusal>();

                    // A supervisor and its workers share standard output: its lines must not be split.
                    services.AddSingleton<SharedConsoleSetup>();
                    services.AddSingleton<IConfigureOptions<ConsoleLoggerOptions>>(sp => sp.GetRequiredService<SharedConsoleSetup>());
                    services.AddSingleton<IConfigureOptions<SimpleConsoleFormatterOptions>>(sp => sp.GetRequiredService<SharedConsoleSetup>());
                    services.AddSingleton<IConfigureOptions<JsonConsoleFormatterOptions>>(sp => sp.GetRequiredService<SharedConsoleSetup>());
                    services.AddSingleton<IConfigureOptions<ConsoleFormatterOptions>>(sp => sp.GetRequiredService<SharedConsoleSetup>());
                }

                // Registered before any code configuration so that code runs after the binding and wins.
                services.AddSingleton<IConfigureOptions<WorkerProcessOptions>>(binder);
                if (worker is not null)
                {
                    services.AddAcceptStrategyWorker(worker);
                }

                services.AddHostedService<WorkerSupervisor>();
            }

            services.Configure(configure);
        });
    }
}
