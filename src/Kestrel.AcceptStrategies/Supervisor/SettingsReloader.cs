using System.Globalization;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// SIGHUP's first step: reloads the configuration and takes what a running supervisor can change. The sockets were
/// made for <c>Strategy</c>, <c>Acceptors</c> and <c>DeferAccept</c>, and the workers' runtime profile was decided
/// from the supervisor's start-up environment, so a change to those is logged and kept for a
/// restart; an invalid configuration changes nothing.
/// </summary>
internal sealed class SettingsReloader(
    IConfiguration configuration,
    IOptionsFactory<AcceptStrategyOptions> transportFactory,
    IOptionsFactory<WorkerProcessOptions> factory,
    AcceptStrategyOptions transport,
    ILogger logger)
{
    private int _configuredWorkers = -1;

    /// <summary>
    /// The new settings, or null if the configuration is invalid. <paramref name="workers"/> is the new worker count when
    /// the configured one changed (so SIGTTIN/SIGTTOU adjustments survive a reload that did not touch it).
    /// </summary>
    public WorkerProcessOptions? Reload(WorkerProcessOptions current, out int? workers)
    {
        workers = null;
        if (_configuredWorkers < 0)
        {
            _configuredWorkers = current.Workers;
        }

        WorkerProcessOptions fresh;
        AcceptStrategyOptions freshTransport;
        try
        {
            (configuration as IConfigurationRoot)?.Reload();
            fresh = factory.Create(Options.DefaultName);
            freshTransport = transportFactory.Create(Options.DefaultName);
        }
        catch (OptionsValidationException e)
        {
            // A validator the app added itself.
            AcceptStrategyLog.ReloadRejected(logger, string.Join(" ", e.Failures));
            return null;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or UnauthorizedAccessException or InvalidOperationException)
        {
            // A configuration file that cannot be read now (EMFILE, a half-written edit) or a value of the wrong type.
            AcceptStrategyLog.ReloadRejected(logger, $"{e.GetType().Name}: {e.Message}");
            return null;
        }

        var problems = OptionsValidation.Validate(freshTransport, fresh, inWorker: false);
        if (problems.Count > 0)
        {
            AcceptStrategyLog.ReloadRejected(logger, string.Join(" ", problems));
            return null;
        }

        KeepForRestart(nameof(transport.Strategy), transport.Strategy, freshTransport.Strategy);
        KeepForRestart(nameof(transport.Acceptors), transport.Acceptors, freshTransport.Acceptors);
        KeepForRestart(nameof(transport.DeferAccept), transport.DeferAccept, freshTransport.DeferAccept);
        fresh.RuntimeProfile = KeepForRestart(nameof(fresh.RuntimeProfile), current.RuntimeProfile, fresh.RuntimeProfile);
        fresh.StatusEndpoint = KeepForRestart(nameof(fresh.StatusEndpoint), current.StatusEndpoint, fresh.StatusEndpoint);
        if (fresh.Workers == 0)
        {
            fresh.Workers = KeepForRestart(nameof(fresh.Workers), _configuredWorkers, 0);
        }

        var changes = new List<string>();
        Compare(changes, nameof(fresh.Workers), _configuredWorkers, fresh.Workers);
        Compare(changes, nameof(fresh.MaxWorkers), current.MaxWorkers, fresh.MaxWorkers);
        Compare(changes, nameof(fresh.MinSpareWorkers), current.MinSpareWorkers, fresh.MinSpareWorkers);
        Compare(changes, nameof(fresh.MaxSpareWorkers), current.MaxSpareWorkers, fresh.MaxSpareWorkers);
        Compare(changes, nameof(fresh.MaxRequestsPerWorker), current.MaxRequestsPerWorker, fresh.MaxRequestsPerWorker);
        Compare(changes, nameof(fresh.MinRequestsPerWorker), current.MinRequestsPerWorker, fresh.MinRequestsPerWorker);
        Compare(changes, nameof(fresh.MaxWorkerLifetime), current.MaxWorkerLifetime, fresh.MaxWorkerLifetime);
        Compare(changes, nameof(fresh.MaxWorkerMemoryMegabytes), current.MaxWorkerMemoryMegabytes, fresh.MaxWorkerMemoryMegabytes);
        Compare(changes, nameof(fresh.SpawnInterval), current.SpawnInterval, fresh.SpawnInterval);
        Compare(changes, nameof(fresh.RespawnBackoff), current.RespawnBackoff, fresh.RespawnBackoff);
        Compare(changes, nameof(fresh.MaxRespawnBackoff), current.MaxRespawnBackoff, fresh.MaxRespawnBackoff);
        Compare(changes, nameof(fresh.GracefulShutdownTimeout), current.GracefulShutdownTimeout, fresh.GracefulShutdownTimeout);
        Compare(changes, nameof(fresh.WorkerStartTimeout), current.WorkerStartTimeout, fresh.WorkerStartTimeout);
        Compare(changes, nameof(fresh.HangTimeout), current.HangTimeout, fresh.HangTimeout);
        Compare(changes, nameof(fresh.WarmupPath), current.WarmupPath, fresh.WarmupPath);

        if (fresh.Workers != _configuredWorkers)
        {
            workers = fresh.Workers;
        }

        _configuredWorkers = fresh.Workers;
        AcceptStrategyLog.ConfigurationReloaded(logger, changes.Count == 0 ? "no supervisor setting changed" : string.Join(", ", changes));
        return fresh;
    }

    private T KeepForRestart<T>(string option, T old, T @new)
    {
        if (!EqualityComparer<T>.Default.Equals(old, @new))
        {
            AcceptStrategyLog.ReloadNeedsRestart(logger, option, Convert.ToString(old, CultureInfo.InvariantCulture) ?? "", Convert.ToString(@new, CultureInfo.InvariantCulture) ?? "");
        }

        return old;
    }

    private static void Compare<T>(List<string> changes, string option, T old, T @new)
    {
        if (!EqualityComparer<T>.Default.Equals(old, @new))
        {
            changes.Add(string.Create(CultureInfo.InvariantCulture, $"{option} {old} -> {@new}"));
        }
    }
}
