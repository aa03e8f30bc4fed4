using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Supervisor.Endpoints;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Worker;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Worker;

/// <summary>
/// The worker's binding seam in-process: a worker identity is injected (no environment variables, no static), and
/// the transport Kestrel sees binds on the descriptors it names, starts accepting only when told, and counts.
/// </summary>
public sealed class WorkerBinderTests
{
    private static readonly IPEndPoint Requested = new(IPAddress.Loopback, 0);

    [Fact]
    public async Task BindAsync_InjectedWorkerIdentity_AcceptsOnPassedDescriptorOnlyOnceStartedAndCounts()
    {
        // What a supervisor binds and passes: a prepared listening socket, here as a descriptor of the worker's own.
        using var supervisorSocket = ListenSocketBinder.Bind(Requested, AcceptStrategy.ThunderingHerd, 1, deferAccept: false, new SocketTransportOptions())[0];
        var port = ((IPEndPoint)supervisorSocket.LocalEndPoint!).Port;
        var fd = Libc.Fcntl((int)supervisorSocket.SafeHandle.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, 0);
        Assert.True(fd >= 0);
        await using var provider = CreateServices(Identity(fd));

        var process = provider.GetRequiredService<WorkerProcessInfo>();
        Assert.Equal((WorkerProcessRole.Worker, 2, 3), (process.Role, process.Slot, process.Generation));

        var factory = provider.GetRequiredService<RoleListenerFactory>();
        await using var listener = await factory.BindAsync(Requested);
        Assert.Equal(port, ((IPEndPoint)listener.EndPoint).Port);

        // Gated: until the supervisor says accept, no acceptor runs and connections wait in the kernel's queue.
        Assert.DoesNotContain(TestServer.ThreadNames(), n => n.StartsWith($"acc:{port}#", StringComparison.Ordinal));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.EndPoint);

        var listeners = provider.GetRequiredService<WorkerListeners>();
        Assert.Same(listener, Assert.Single(listeners.Snapshot()));
        var slotTags = new System.Collections.Concurrent.ConcurrentBag<object?>();
        using var meter = new MeterListener();
        meter.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == AcceptStrategyMetrics.ConnectionsAcceptedName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        meter.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "worker.slot")
                {
                    slotTags.Add(tag.Value);
                }
            }
        });
        meter.Start();
        listeners.Snapshot()[0].Start();

        await using var connection = await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Timeout);
        Assert.NotNull(connection);
        Assert.Equal(client.LocalEndPoint, connection.RemoteEndPoint);
        Assert.Equal(1, listeners.Connections.Total);
        Assert.NotNull(listeners.Connections.Find(connection.ConnectionId));

        // Per-acceptor series of a worker carry its slot.
        Assert.Equal([2], slotTags.Distinct());
    }

    [Fact]
    public async Task BindAsync_EndpointTheSupervisorDidNotPass_ThrowsNamingBoth()
    {
        await using var provider = CreateServices(Identity(fd: null));
        var factory = provider.GetRequiredService<RoleListenerFactory>();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 1)).AsTask());
        Assert.Contains("127.0.0.1:1", error.Message, StringComparison.Ordinal);
        Assert.Contains(Requested.ToString(), error.Message, StringComparison.Ordinal);
    }

    private static WorkerIdentity Identity(int? fd)
    {
        var endpoints = new Dictionary<string, Queue<InheritedEndpoint>> { [Requested.ToString()] = new() };
        if (fd is { } listening)
        {
            endpoints[Requested.ToString()].Enqueue(new InheritedEndpoint([listening], LockFd: null));
        }

        return new WorkerIdentity(slot: 2, generation: 3, budget: 0, controlFd: -1, AcceptStrategy.ThunderingHerd, acceptors: null, endpoints);
    }

    private static ServiceProvider CreateServices(WorkerIdentity worker)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddMetrics();
        services.AddOptions<SocketTransportOptions>();
        services.Configure<AcceptStrategyOptions>(o => { o.Strategy = AcceptStrategy.ThunderingHerd; o.Acceptors = 1; });
        services.Configure<WorkerProcessOptions>(o => o.Workers = 1);
        services.AddSingleton<AcceptStrategyMetrics>();
        services.AddSingleton<AcceptStrategyListenerFactory>();
        services.AddSingleton<SupervisorSockets>();
        services.AddSingleton<InheritedListeners>();
        services.AddSingleton<SupervisorBinder>();
        services.AddSingleton<RoleListenerFactory>();
        services.AddSingleton(sp => new WorkerProcessInfo(() => ProcessRoles.Resolve(
            new WorkerProcessModel(worker, workerModeServices: true), sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<WorkerProcessOptions>>().Value, NullLogger.Instance)));
        services.AddAcceptStrategyWorker(worker);
        return services.BuildServiceProvider();
    }
}
