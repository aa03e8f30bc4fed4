using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>The connection features Kestrel's socket transport offers, answered from the connection itself.</summary>
internal sealed class ConnectionFeatures(NativeConnection connection) :
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IMemoryPoolFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature
{
    public string ConnectionId
    {
        get => connection.ConnectionId;
        set => connection.ConnectionId = value;
    }

    public IDuplexPipe Transport
    {
        get => connection.Transport;
        set => connection.Transport = value;
    }

    public IDictionary<object, object?> Items
    {
        get => connection.Items;
        set => connection.Items = value;
    }

    public MemoryPool<byte> MemoryPool => connection.MemoryPool;

    public CancellationToken ConnectionClosed
    {
        get => connection.ConnectionClosed;
        set => connection.ConnectionClosed = value;
    }

    public EndPoint? LocalEndPoint
    {
        get => connection.LocalEndPoint;
        set => connection.LocalEndPoint = value;
    }

    public EndPoint? RemoteEndPoint
    {
        get => connection.RemoteEndPoint;
        set => connection.RemoteEndPoint = value;
    }

    public void Abort() => connection.Abort();
}
