using System.Collections.Concurrent;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Connections a worker has accepted and not yet closed, so a draining worker knows when it is done and which
/// connections it may close. Only workers count: tracking costs an allocation and a dictionary entry per connection.
/// </summary>
internal sealed class ConnectionCounter : IAcceptedConnectionObserver
{
    private readonly ConcurrentDictionary<string, TrackedConnection> _open = new(StringComparer.Ordinal);
    private long _openCount;
    private long _total;
    private TaskCompletionSource? _allClosed;

    public long Open => Interlocked.Read(ref _openCount);

    public long Total => Interlocked.Read(ref _total);

    public void Accepted(ConnectionContext connection)
    {
        Interlocked.Increment(ref _openCount);
        Interlocked.Increment(ref _total);

        // Kestrel gives HttpContext.Connection.Id the transport's connection id: the middleware finds it by that.
        var id = connection.ConnectionId;
        _open[id] = new TrackedConnection(connection);
        connection.ConnectionClosed.UnsafeRegister(
            static state =>
            {
                var (counter, id) = ((ConnectionCounter, string))state!;
                counter._open.TryRemove(id, out _);
                if (Interlocked.Decrement(ref counter._openCount) == 0)
                {
                    Volatile.Read(ref counter._allClosed)?.TrySetResult();
                }
            },
            (this, id));
    }

    /// <summary>
    /// Completes once no connection is open (at once if none is): for a draining worker, whose listeners no longer
    /// accept, so the count only falls.
    /// </summary>
    public Task WhenAllClosed()
    {
        var allClosed = Volatile.Read(ref _allClosed)
            ?? Interlocked.CompareExchange(ref _allClosed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null)
            ?? _allClosed;

        // After publishing it: a close that brought the count to zero before then did not see it.
        if (Open == 0)
        {
            allClosed.TrySetResult();
        }

        return allClosed.Task;
    }

    public TrackedConnection? Find(string connectionId) => _open.GetValueOrDefault(connectionId);

    public IReadOnlyList<TrackedConnection> Snapshot() => [.. _open.Values];
}
