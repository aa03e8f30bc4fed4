using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Supervisor.Endpoints;

/// <summary>
/// What Kestrel sees of an endpoint in the supervisor: bound (so <c>--urls</c>, port 0 and <c>localhost</c> resolve
/// and are logged as in one process) but never yielding a connection; the workers accept on its sockets.
/// </summary>
internal sealed class SupervisorListener(SupervisedEndpoint endpoint, SupervisorSockets registry) : IConnectionListener
{
    private readonly TaskCompletionSource _unbound = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public EndPoint EndPoint => endpoint.BoundEndPoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        await _unbound.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (_unbound.TrySetResult())
        {
            registry.Remove(endpoint);
            endpoint.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();
}
