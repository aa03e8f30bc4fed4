namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Gives one acceptor its accept mutex (a new one or a shared one, as the kind needs). All mutexes from one factory
/// exclude each other.
/// </summary>
internal interface IAcceptMutexFactory : IDisposable
{
    /// <summary>A short name for logs and metrics, such as <c>in-process</c> or <c>flock</c>.</summary>
    string Kind { get; }

    IAcceptMutex Create();
}
