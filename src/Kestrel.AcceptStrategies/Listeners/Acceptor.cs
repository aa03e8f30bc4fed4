using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Listeners;

/// <summary>What the acceptors of one listener share.</summary>
/// <param name="EndPoint">The endpoint, for logs and metric tags.</param>
/// <param name="Strategy">The strategy, for metric tags and the ThunderingHerd rotation.</param>
/// <param name="Stop">Set when the listener unbinds: stop taking connections.</param>
/// <param name="Accepted">The bounded queue to Kestrel's accept loop.</param>
/// <param name="Metrics">The library's meter.</param>
/// <param name="Logger">The listeners' log.</param>
/// <param name="Observer">Told of every connection handed to Kestrel (a worker's drain), or null.</param>
/// <param name="Disposing">Cancelled when the listener is disposed: Kestrel no longer takes connections.</param>
internal sealed record AcceptorContext(
    EndPoint EndPoint,
    AcceptStrategy Strategy,
    StopSignal Stop,
    ChannelWriter<ConnectionContext> Accepted,
    AcceptStrategyMetrics Metrics,
    ILogger Logger,
    IAcceptedConnectionObserver? Observer,
    CancellationToken Disposing);

/// <summary>
/// One acceptor thread of a listener: a <see cref="MutexAcceptor"/> (Serialized) or an <see cref="EventLoop"/>
/// (ThunderingHerd, ReusePort). What they share: counting the connections handed to Kestrel, and accept failures
/// that are logged once per episode and backed off exponentially.
/// </summary>
internal abstract class Acceptor(int id, Socket listenSocket, AcceptorContext context) : IDisposable
{
    private const int FirstBackoffMilliseconds = 5;
    protected const int MaxBackoffMilliseconds = 500;

    private readonly TagList _tags = context.Metrics.CreateTags(id, context.Strategy, context.EndPoint.ToString()!);
    private long _accepted;
    private int _backoff;
    private int _failures;
    private string? _threadName;
    private Action? _exited;

    public int Id => id;

    /// <summary>
    /// Set once this acceptor has stopped taking connections and handed over every one it took: an event loop when its
    /// listening socket is closed (it goes on serving), a mutex acceptor when its thread exits.
    /// </summary>
    public TaskCompletionSource ListeningEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Connections this acceptor has handed to Kestrel; written by its thread, read by a worker's heartbeat.</summary>
    public long Accepted => Volatile.Read(ref _accepted);

    /// <summary>True while the thread waits for something stopping cannot interrupt (a blocking <c>flock</c>).</summary>
    public virtual bool InUncancellableWait => false;

    protected Socket ListenSocket => listenSocket;

    protected AcceptorContext Context => context;

    protected ref readonly TagList Tags => ref _tags;

    /// <summary>
    /// Runs the acceptor on a new background thread named <paramref name="name"/>; <paramref name="exited"/> runs once
    /// the acceptor is done, on whichever thread ends it.
    /// </summary>
    public void Start(string name, Action exited)
    {
        (_threadName, _exited) = (name, exited);
        StartThread(Run);
    }

    /// <summary>
    /// The thread's body (never throws): true once the acceptor is done; false when it has handed its work to a thread
    /// it started with <see cref="StartThread"/>, which then ends it.
    /// </summary>
    protected abstract bool Run();

    /// <summary>A thread of this acceptor, named as its first: after <paramref name="body"/>, the acceptor's exit runs unless it returned false.</summary>
    protected void StartThread(Func<bool> body)
    {
        var thread = new Thread(() =>
        {
            var done = true;
            try
            {
                done = body();
            }
            finally
            {
                if (done)
                {
                    _exited!();
                }
            }
        })
        {
            IsBackground = true,
            Name = _threadName,
        };
        thread.Start();
    }

    /// <summary>Releases what the acceptor holds besides its socket; called once its work has ended (or never started).</summary>
    public abstract void Dispose();

    protected void Count(ConnectionContext connection)
    {
        context.Metrics.ConnectionAccepted(_tags);
        Volatile.Write(ref _accepted, _accepted + 1);
        context.Observer?.Accepted(connection);
    }

    /// <summary>
    /// An accept that failed for want of descriptors, memory or the lock: counted under <paramref name="error"/> (a few
    /// stable values, see <see cref="ErrorTag"/>), logged once per episode with <paramref name="detail"/> if given; the
    /// back-off in ms.
    /// </summary>
    protected int AcceptFailed(string error, string? detail = null)
    {
        context.Metrics.AcceptError(error, _tags);
        _backoff = _backoff == 0 ? FirstBackoffMilliseconds : Math.Min(_backoff * 2, MaxBackoffMilliseconds);
        if (_failures++ == 0)
        {
            AcceptStrategyLog.AcceptError(context.Logger, id, context.EndPoint, detail ?? error, _backoff);
        }

        return _backoff;
    }

    /// <summary>Something unexpected threw: counted, logged once per episode with the exception; the back-off in ms.</summary>
    protected int AcceptorFaulted(Exception exception)
    {
        context.Metrics.AcceptError("unexpected", _tags);
        _backoff = _backoff == 0 ? FirstBackoffMilliseconds : Math.Min(_backoff * 2, MaxBackoffMilliseconds);
        if (_failures++ == 0)
        {
            AcceptStrategyLog.AcceptorFailed(context.Logger, id, context.EndPoint, _backoff, exception);
        }

        return _backoff;
    }

    /// <summary>A connection was taken: ends a failure episode (logged) and its back-off.</summary>
    protected void AcceptSucceeded()
    {
        if (_failures > 0)
        {
            AcceptStrategyLog.AcceptRecovered(context.Logger, id, context.EndPoint, _failures);
            (_failures, _backoff) = (0, 0);
        }
    }

    /// <summary>A connection that died in the kernel's queue (reset, aborted): counted, no back-off.</summary>
    /// <summary>The error tag of a failed call's errno: the .NET <see cref="SocketError"/> name where Kestrel's transport would report one, else the errno's name.</summary>
    protected static string ErrorTag(int errno) =>
        errno is Libc.EMFILE or Libc.ENFILE ? nameof(SocketError.TooManyOpenSockets)
        : errno is Libc.ENOBUFS or Libc.ENOMEM ? nameof(SocketError.NoBufferSpaceAvailable)
        : Libc.ErrnoName(errno);

    protected void ConnectionLostInQueue() => context.Metrics.AcceptError(SocketError.ConnectionAborted.ToString(), _tags);

    /// <summary>Another acceptor (or process) took the connection this wake-up was for.</summary>
    protected void SpuriousWakeup() => context.Metrics.SpuriousWakeup(_tags);
}
