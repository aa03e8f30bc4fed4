using Kestrel.AcceptStrategies.Listeners;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>The listeners Kestrel has bound in a worker, started when the supervisor says so, and their connections.</summary>
internal sealed class WorkerListeners
{
    private readonly List<AcceptStrategyConnectionListener> _listeners = [];

    public ConnectionCounter Connections { get; } = new();

    public void Add(AcceptStrategyConnectionListener listener)
    {
        lock (_listeners)
        {
            _listeners.Add(listener);
        }
    }

    public IReadOnlyList<AcceptStrategyConnectionListener> Snapshot()
    {
        lock (_listeners)
        {
            return [.. _listeners];
        }
    }
}
