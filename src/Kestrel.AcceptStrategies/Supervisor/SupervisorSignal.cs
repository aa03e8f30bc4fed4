namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>The signals the supervisor acts on (SIGTERM and SIGINT belong to the host's graceful stop).</summary>
internal enum SupervisorSignal
{
    /// <summary>SIGHUP: re-read the configuration and replace every worker.</summary>
    Reload,

    /// <summary>SIGTTIN: one worker more.</summary>
    ScaleUp,

    /// <summary>SIGTTOU: one worker fewer.</summary>
    ScaleDown,
}
