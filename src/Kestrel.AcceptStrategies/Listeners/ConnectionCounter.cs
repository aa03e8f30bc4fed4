using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>
/// Connections a worker has accepted and not yet closed, so a draining worker knows when it is done. Only workers
/// count: the callback registration costs an allocation per connection.
/// </summary>
internal sealed class ConnectionCounter
{
    private long _open;
    private long _total;

    public long Open => Interlocked.Read(ref _open);

    public long Total => Interlocked.Read(ref _total);

    public void Accepted(ConnectionContext connection)
    {
        Interlocked.Increment(ref _open);
        Interlocked.Increment(ref _total);
        connection.ConnectionClosed.UnsafeRegister(static state => Interlocked.Decrement(ref ((ConnectionCounter)state!)._open), this);
    }
}
