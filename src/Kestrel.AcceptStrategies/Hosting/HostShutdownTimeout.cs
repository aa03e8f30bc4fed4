using Kestrel.AcceptStrategies.Supervisor.Policy;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// The host's shutdown timeout for worker mode, through options configuration: a supervisor must outlast its
/// workers' drain (<c>GracefulShutdownTimeout</c> plus the margins in which it kills what is left); a worker's
/// Kestrel stops within <c>GracefulShutdownTimeout</c>. Set once, when the host is built: a larger
/// <c>GracefulShutdownTimeout</c> taken on SIGHUP governs drains from then on, but the supervisor's own stop stays
/// bounded by the timeout it started with.
/// </summary>
internal sealed class HostShutdownTimeout(WorkerProcessInfo process, IOptions<WorkerProcessOptions> options) : IConfigureOptions<HostOptions>
{
    public void Configure(HostOptions host)
    {
        WorkerProcessRole role;
        TimeSpan graceful;
        try
        {
            role = process.Role;
            graceful = options.Value.GracefulShutdownTimeout;
        }
        catch (OptionsValidationException)
        {
            // The host resolves its options while it is built; invalid options are start-up's to report, in one error.
            return;
        }

        switch (role)
        {
            case WorkerProcessRole.Supervisor:
                var needed = graceful + SlotPolicy.DrainKillMargin + SlotPolicy.DrainKillMargin;
                if (host.ShutdownTimeout < needed)
                {
                    host.ShutdownTimeout = needed;
                }

                break;
            case WorkerProcessRole.Worker:
                host.ShutdownTimeout = graceful;
                break;
        }
    }
}
