using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// A worker's start-up is one line, the supervisor's "is ready": the host's own start-up lines (the
/// <c>Microsoft.Hosting.Lifetime</c> category: listening addresses, "Application started", environment, content
/// root) would repeat for every worker and every recycle, so in a worker they are shown from Warning up, unless the
/// app set a level for that category itself (<c>Logging:LogLevel:Microsoft.Hosting.Lifetime</c>, also under
/// <c>Logging:Console:LogLevel</c>).
/// </summary>
internal sealed class WorkerStartupLines(IConfiguration configuration) : IConfigureOptions<LoggerFilterOptions>
{
    public const string LifetimeCategory = "Microsoft.Hosting.Lifetime";

    public void Configure(LoggerFilterOptions options)
    {
        if (configuration[$"Logging:LogLevel:{LifetimeCategory}"] is not null
            || configuration[$"Logging:Console:LogLevel:{LifetimeCategory}"] is not null)
        {
            return;
        }

        // Registered after the host's configuration binding, so for the same category this rule comes last and wins.
        options.Rules.Add(new LoggerFilterRule(providerName: null, LifetimeCategory, LogLevel.Warning, filter: null));
    }
}
