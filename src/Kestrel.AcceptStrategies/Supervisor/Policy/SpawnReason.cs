namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>Why a worker was started, as logged ("initial", "respawn", "recycle", "reload", "scaled").</summary>
internal enum SpawnReason
{
    Initial,
    Respawn,
    Recycle,
    Reload,
    Scaled,
}
