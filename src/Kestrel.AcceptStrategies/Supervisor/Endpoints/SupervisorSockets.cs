namespace Kestrel.AcceptStrategies.Supervisor.Endpoints;

/// <summary>The endpoints Kestrel has bound in the supervisor, in binding order, for the workers to inherit.</summary>
internal sealed class SupervisorSockets
{
    private readonly List<SupervisedEndpoint> _endpoints = [];

    public void Add(SupervisedEndpoint endpoint)
    {
        lock (_endpoints)
        {
            _endpoints.Add(endpoint);
        }
    }

    public void Remove(SupervisedEndpoint endpoint)
    {
        lock (_endpoints)
        {
            _endpoints.Remove(endpoint);
        }
    }

    public IReadOnlyList<SupervisedEndpoint> Snapshot()
    {
        lock (_endpoints)
        {
            return [.. _endpoints];
        }
    }
}
