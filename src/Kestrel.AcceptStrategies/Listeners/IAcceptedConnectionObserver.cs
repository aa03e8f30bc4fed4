using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Told of every connection an acceptor hands to Kestrel, before Kestrel takes it: how a caller keeps track of
/// connections (a worker, to drain) without the transport knowing why.
/// </summary>
internal interface IAcceptedConnectionObserver
{
    void Accepted(ConnectionContext connection);
}
