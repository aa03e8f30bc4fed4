namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Creates the accept mutex of one acceptor. All mutexes from one factory exclude each other.
/// </summary>
internal interface IAcceptMutexFactory : IDisposable
{
    /// <summary>A short name for logs and metrics, such as <c>in-process</c> or <c>flock</c>.</summary>
    string Kind { get; }

    IAcceptMutex Create();
}
