using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>One connection as the server saw it, through a connection middleware.</summary>
internal sealed class ServerConnection(string id, int remotePort, string transport)
{
    public string Id { get; } = id;

    /// <summary>The client's port: how a test finds the server's side of its own socket.</summary>
    public int RemotePort { get; } = remotePort;

    /// <summary>The connection's type, for messages (NativeConnection or Kestrel's SocketConnection).</summary>
    public string Transport { get; } = transport;

    /// <summary>The transport's <see cref="ConnectionContext.ConnectionClosed"/> fired.</summary>
    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Kestrel is done with the connection: the middleware's call to the rest of the pipeline returned.</summary>
    public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsOver => Closed.Task.IsCompleted && Ended.Task.IsCompleted;
}

/// <summary>
/// A connection middleware (the first of every endpoint) that records each connection, checks that the strategy
/// serves it with the transport under test (the event loop's own connection for ReusePort and ThunderingHerd, Kestrel's
/// SocketConnection for Serialized), and reports when <see cref="ConnectionContext.ConnectionClosed"/> fires and when
/// Kestrel is done with it.
/// </summary>
internal sealed class ServerConnections(AcceptStrategy strategy)
{
    private readonly ConcurrentDictionary<int, TaskCompletionSource<ServerConnection>> _byClientPort = new();
    private readonly ConcurrentQueue<ServerConnection> _all = new();

    public IReadOnlyList<ServerConnection> All => [.. _all];

    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        // The event loop's connections are the library's own type; Serialized keeps Kestrel's.
        var native = connection.GetType().Assembly == typeof(AcceptStrategy).Assembly;
        if (native != (strategy != AcceptStrategy.Serialized))
        {
            // Refused: the client sees the connection end and the test fails.
            throw new InvalidOperationException($"{strategy} served a {connection.GetType().Name}");
        }

        var port = (connection.RemoteEndPoint as IPEndPoint)?.Port ?? -1;
        var recorded = new ServerConnection(connection.ConnectionId, port, connection.GetType().Name);
        // Not disposed with the middleware: the token may fire after Kestrel is done with the connection.
        _ = connection.ConnectionClosed.Register(static state => ((ServerConnection)state!).Closed.TrySetResult(), recorded);
        _all.Enqueue(recorded);
        Slot(port).TrySetResult(recorded);
        try
        {
            await next(connection);
        }
        finally
        {
            recorded.Ended.TrySetResult();
        }
    };

    /// <summary>The server's side of the connection from the client's <paramref name="clientPort"/>, once it reached the middleware.</summary>
    public Task<ServerConnection> ForClientAsync(int clientPort, CancellationToken ct) => Slot(clientPort).Task.WaitAsync(ct);

    private TaskCompletionSource<ServerConnection> Slot(int port) =>
        _byClientPort.GetOrAdd(port, static _ => new TaskCompletionSource<ServerConnection>(TaskCreationOptions.RunContinuationsAsynchronously));
}
