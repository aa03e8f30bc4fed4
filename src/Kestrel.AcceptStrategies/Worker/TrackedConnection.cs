using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// One connection a worker accepted: whether a request on it is in the app, so a draining worker knows which
/// connections it may cut and which it must let finish.
/// </summary>
internal sealed class TrackedConnection(ConnectionContext connection)
{
    private const int Cut = -1;

    // Requests in the app on this connection, or Cut once the drain closed it: a request cannot start on a cut
    // connection, and a connection with a request in the app is never cut.
    private int _inApp;
    private volatile bool _multiplexed;

    public ConnectionContext Connection { get; } = connection;

    public bool HasRequestInApp => Volatile.Read(ref _inApp) > 0;

    /// <summary>HTTP/2 or HTTP/3: closing means GOAWAY, which clients handle without a failed request.</summary>
    public bool Multiplexed => _multiplexed;

    public void RequestStarted(bool multiplexed)
    {
        if (multiplexed)
        {
            _multiplexed = true;
        }

        int current;
        do
        {
            current = Volatile.Read(ref _inApp);
            if (current == Cut)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _inApp, current + 1, current) != current);
    }

    public void RequestEnded()
    {
        int current;
        do
        {
            current = Volatile.Read(ref _inApp);
            if (current <= 0)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _inApp, current - 1, current) != current);
    }

    /// <summary>
    /// Asks Kestrel to close the connection once its requests are done: <c>Connection: close</c> on HTTP/1.1, GOAWAY on
    /// HTTP/2. Kestrel sets the feature when it takes the connection; one still queued for Kestrel has none yet.
    /// </summary>
    public void RequestClose() => Connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();

    /// <summary>Aborts the connection unless a request on it is in the app; true when it did.</summary>
    public bool CutIfNoRequestInApp()
    {
        if (Interlocked.CompareExchange(ref _inApp, Cut, 0) != 0)
        {
            return false;
        }

        Connection.Abort(new ConnectionAbortedException("The worker is draining and no request on this connection reached the app."));
        return true;
    }
}
