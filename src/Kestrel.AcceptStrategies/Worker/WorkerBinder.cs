using System.Net;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Binds Kestrel's endpoints in a worker: a listener on the descriptors the supervisor passed for the same endpoint,
/// counting its connections for the drain and not started until the supervisor says so (<see cref="WorkerListeners"/>).
/// </summary>
internal sealed class WorkerBinder(
    WorkerIdentity worker, IOptions<AcceptStrategyOptions> options, AcceptStrategyListenerFactory transport, WorkerListeners listeners, AcceptStrategyMetrics metrics)
{
    /// <summary>An IP endpoint or a Unix socket, by the name the supervisor registered it under (Kestrel's own).</summary>
    public IConnectionListener Bind(EndPoint endpoint)
    {
        metrics.WorkerSlot = worker.Slot;
        var inherited = worker.TakeEndpoint(endpoint.ToString() ?? "") ?? throw new InvalidOperationException(
            $"This worker was asked to bind {endpoint}, but its supervisor passed sockets only for {string.Join(", ", worker.Endpoints)}. Workers serve the endpoints the supervisor bound at start-up; restart the supervisor to change them.");

        // The supervisor's strategy made the sockets; a reloaded configuration cannot change it. Serialized: the
        // endpoint's own lock, which this endpoint's acceptors in every worker take turns on, and no other endpoint's.
        var strategy = worker.Strategy;
        var mutexFactory = strategy == AcceptStrategy.Serialized
            ? FlockAcceptMutexFactory.ForInheritedFd(inherited.LockFd ?? throw new InvalidOperationException($"The supervisor passed no accept lock file for {endpoint} (Serialized strategy)."))
            : null;
        var sockets = ListenSocketBinder.Adopt(inherited.Fds);
        // ReusePort: one acceptor per socket of the slot's group; a shared socket gets the supervisor's Acceptors (as
        // SIGHUP's log says, a changed configuration takes effect when the supervisor restarts).
        var acceptors = strategy == AcceptStrategy.ReusePort && sockets.Length > 1 ? sockets.Length : worker.Acceptors ?? options.Value.Acceptors;
        // Debug: the supervisor named the endpoint when it bound it; a worker's one start-up line is its "ready".
        var listener = transport.Create(sockets, strategy, acceptors, mutexFactory, listeners.Connections, LogLevel.Debug);

        // Started by the worker agent once the supervisor tells it to accept.
        listeners.Add(listener);
        return listener;
    }
}
