using System.Reflection;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Server.Kestrel;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// Turns off Kestrel's endpoint reload (<c>Kestrel:Endpoints</c> changed in appsettings.json) in a supervisor and its
/// workers. The supervisor's Kestrel would bind the new endpoint with nobody accepting and close the old one under the
/// workers; the workers cannot bind what the supervisor did not hand them. Endpoints are fixed until a restart; the
/// supervisor logs when the section changes.
/// </summary>
/// <remarks>
/// WebApplication's defaults call <c>options.Configure(config.GetSection("Kestrel"), reloadOnChange: true)</c>; a
/// loader the app made itself with <c>Configure(section)</c> does not reload and is kept as it is.
/// </remarks>
internal sealed class KestrelReloadGuard(WorkerProcessInfo process, ILoggerFactory loggerFactory) : IPostConfigureOptions<KestrelServerOptions>
{
    private static readonly PropertyInfo? ReloadOnChange =
        typeof(KestrelConfigurationLoader).GetProperty("ReloadOnChange", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);

    private static readonly FieldInfo? ReloadOnChangeField =
        typeof(KestrelConfigurationLoader).GetField("<ReloadOnChange>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic);

    public void PostConfigure(string? name, KestrelServerOptions options)
    {
        if (options.ConfigurationLoader is not { } loader || RoleOrNull() is null or WorkerProcessRole.SingleProcess)
        {
            return;
        }

        // Turned off on the loader the app configured, so its endpoint callbacks (.Endpoint("name", ...)) and Listen*
        // calls stay. Unknown (a future Kestrel without the property): assume the default, which reloads, and replace
        // the loader as a last resort.
        if (ReloadOnChange?.GetValue(loader) as bool? ?? true)
        {
            if (ReloadOnChangeField is { } field)
            {
                field.SetValue(loader, false);
            }
            else
            {
                options.Configure(loader.Configuration, reloadOnChange: false);
            }
        }

        if (process.Role == WorkerProcessRole.Supervisor)
        {
            var section = loader.Configuration;
            var atStart = Snapshot(section);
            var logger = loggerFactory.CreateLogger(AcceptStrategyLog.HostingCategory);
            ChangeToken.OnChange(section.GetReloadToken, () =>
            {
                if (Snapshot(section) != atStart)
                {
                    AcceptStrategyLog.KestrelConfigurationChanged(logger, section is IConfigurationSection s ? s.Path : "Kestrel");
                }
            });
        }
    }

    // WebApplication resolves Kestrel's options while it is built; invalid options are start-up's to report, in one
    // error, not an exception out of Build().
    private WorkerProcessRole? RoleOrNull()
    {
        try
        {
            return process.Role;
        }
        catch (OptionsValidationException)
        {
            return null;
        }
    }

    private static string Snapshot(IConfiguration section) =>
        string.Join('\n', section.AsEnumerable().OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));
}
