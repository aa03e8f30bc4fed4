using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Worker;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// What Kestrel sees as the transport: hands each endpoint to the binder of this process's role. In one process the
/// transport binds and accepts; in a supervisor it binds and registers the sockets for the workers, and never
/// accepts; in a worker it accepts on the descriptors the supervisor passed for the same endpoint.
/// </summary>
internal sealed class RoleListenerFactory(
    WorkerProcessInfo process,
    IOptions<WorkerProcessOptions> options,
    AcceptStrategyListenerFactory transport,
    SupervisorBinder supervisor,
    ILoggerFactory loggerFactory,
    WorkerBinder? worker = null) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly ILogger _logger = loggerFactory.CreateLogger(AcceptStrategyLog.HostingCategory);

    /// <summary>
    /// In one process, IP endpoints only. In worker mode every endpoint, so that one this transport cannot hand to
    /// workers is refused here instead of being served by the supervisor's Kestrel (while every worker, binding it
    /// again, dies on "address already in use").
    /// </summary>
    public bool CanBind(EndPoint endpoint) => transport.CanBind(endpoint) || process.Role != WorkerProcessRole.SingleProcess;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var role = process.Role;
        if (role == WorkerProcessRole.SingleProcess)
        {
            return transport.BindAsync(endpoint, cancellationToken);
        }

        if (endpoint is not (IPEndPoint or UnixDomainSocketEndPoint))
        {
            var workers = options.Value.Workers;
            AcceptStrategyLog.EndpointRefused(_logger, Describe(endpoint), workers);
            throw new NotSupportedException(
                $"WorkerProcesses:Workers = {workers}, but {Describe(endpoint)} is neither an IP endpoint nor a Unix socket: only those are handed to worker processes. Listen on one of them instead, or set Workers = 0 to serve it in one process.");
        }

        return new ValueTask<IConnectionListener>(role == WorkerProcessRole.Supervisor
            ? supervisor.Bind(endpoint)
            : (worker ?? throw new InvalidOperationException("A worker process without its worker environment.")).Bind(endpoint));
    }

    private static string Describe(EndPoint endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint unix => $"the Unix socket 'http://unix:{unix}'",
        FileHandleEndPoint handle => $"the file handle {handle.FileHandle}",
        _ => $"the {endpoint.GetType().Name} '{endpoint}'",
    };
}
