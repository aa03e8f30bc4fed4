using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// The logger factory's scope provider in a worker: the app's own scopes as usual, with the worker's identity as the
/// outermost one on every line, whatever thread or async flow wrote it.
/// </summary>
internal sealed class WorkerLogScopeProvider(WorkerLogScope scope) : IExternalScopeProvider
{
    private readonly LoggerExternalScopeProvider _scopes = new();

    public void ForEachScope<TState>(Action<object?, TState> callback, TState state)
    {
        callback(scope, state);
        _scopes.ForEachScope(callback, state);
    }

    public IDisposable Push(object? state) => _scopes.Push(state);
}
