using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// The library's first step when the host starts, before any hosted service's <c>StartAsync</c> (Kestrel binds in
/// its own): checks every option of both products at once, then makes the process changes its role needs, and no
/// others. A worker claims its inherited descriptors and the terminal signals; one process and a supervisor report the
/// thread pool's spin limit and where it came from.
/// </summary>
internal sealed class AcceptStrategyStartup(
    IServiceProvider services,
    IOptions<AcceptStrategyOptions> transport,
    IConfiguration configuration,
    WorkerProcessInfo process,
    ILoggerFactory loggerFactory) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var model = services.GetService<WorkerProcessModel>();
        var workers = model is null ? null : services.GetRequiredService<IOptions<WorkerProcessOptions>>().Value;
        var problems = OptionsValidation.Validate(transport.Value, workers, inWorker: model?.Worker is not null);
        if (model is null && configuration.GetSection(WorkerProcessOptions.SectionName).Exists())
        {
            problems.Add($"The {WorkerProcessOptions.SectionName} section is set, but the app runs as one process: call builder.WebHost.UseWorkerProcesses() (in place of UseAcceptStrategy()) for worker processes, or remove the section.");
        }

        if (model is not null && workers is not null && model.WorkerModeServices != (process.Role != WorkerProcessRole.SingleProcess))
        {
            // Worker mode's services were chosen from configuration and UseWorkerProcesses's callback, before the logging
            // one of them changes existed: Workers set anywhere else would leave the console split or changed unasked.
            problems.Add($"WorkerProcesses:Workers is {workers.Workers} in the end, but configuration and UseWorkerProcesses's callback, from which the worker-mode services are chosen, ask for {(model.WorkerModeServices ? "worker processes" : "one process")}: it was changed elsewhere (for example with services.Configure<WorkerProcessOptions>). Set Workers in configuration or in UseWorkerProcesses(options => ...).");
        }

        if (problems.Count > 0)
        {
            StartupFailureExit.Arm(services);
            throw new AcceptStrategyOptionsException(problems);
        }

        var logger = loggerFactory.CreateLogger(AcceptStrategyLog.HostingCategory);
        if (process.Role == WorkerProcessRole.Worker)
        {
            model!.Worker!.Claim();
        }
        else
        {
            var (value, source) = SpinLimitReport.Describe();
            AcceptStrategyLog.ThreadPoolSpinLimit(logger, value, source);
        }

        if (AtomicConsole.Installed)
        {
            // Installed while the logging was built, before any logger existed to say so.
            AcceptStrategyLog.SharedConsole(logger);
        }

        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
