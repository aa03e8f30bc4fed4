using System.Collections.Concurrent;
using System.IO.Pipelines;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// Where the application's side of one event loop's connections resumes when the user opted into
/// <c>UnsafePreferInlineScheduling</c>: on the loop's thread, so a kept-alive connection's next request runs on the
/// thread that read it, until one resumption holds the loop for <see cref="BlockThreshold"/> or longer. From then on,
/// for the rest of the loop's life, on the thread pool, as without the option.
/// </summary>
/// <remarks>
/// <para>
/// A resumption scheduled on the loop's thread waits in a queue until the loop calls <see cref="RunReady"/>, between
/// events: the application never runs inside a connection's read or send (or under its locks), only in the loop's own
/// frame, one resumption at a time, each timed. One scheduled on any other thread (a read resumed on the thread pool
/// after back-pressure, another loop) goes to the thread pool: no other thread runs this loop's application code
/// inline, so nothing untimed runs under a connection's locks that the loop may need.
/// </para>
/// <para>
/// A hold is seen two ways. A resumption that returns after the threshold is reported to <c>blocked</c>, on the loop's
/// thread. One still running when the watch (every <see cref="BlockThreshold"/>) finds it past the threshold may be
/// waiting for something only its own loop can deliver (its request body read synchronously, a synchronous write larger
/// than the buffers): <c>takeOver</c> is told, on the watch's thread, and carries the loop on on a new thread (false if
/// it could start none); the held thread's <see cref="RunReady"/> then returns false when the resumption does, and that
/// thread leaves the loop. Either way, from then on application code runs on the thread pool.
/// </para>
/// </remarks>
internal sealed class LoopScheduler(TimeProvider time, Action<TimeSpan> blocked, Func<TimeSpan, bool> takeOver) : PipeScheduler, IDisposable
{
    /// <summary>How long one resumption may hold the loop before the loop stops running application code.</summary>
    public static readonly TimeSpan BlockThreshold = TimeSpan.FromMilliseconds(100);

    // In _running: the watch took the loop from the thread running the resumption.
    private const long TakenOver = -1;

    // In _takeOver: whether takeOver started the loop's new thread.
    private const int Pending = 0, CarriedOn = 1, NoThread = 2;

    // In _watchState: the watch ticks, or it is parked (no tick) until a resumption starts.
    private const int Ticking = 0, Parked = 1;

    /// <summary>Ticks in a row that find no resumption started since the last one, before the watch parks.</summary>
    public const int QuietTicksBeforeParking = 10;

    // Concurrent only for the moment of a take-over: a resumption on the held thread may still enqueue while the loop's
    // new thread drains. Otherwise only the loop's thread touches it.
    private readonly ConcurrentQueue<(Action<object?> Action, object? State)> _ready = new();
    private volatile bool _inline = true;
    private int _loopThread = -1;

    // When the resumption running on the loop started (a timestamp of time), 0 between resumptions, or TakenOver.
    private long _running;
    private int _takeOver;
    private int _leftBy = -1;
    private ITimer? _watch;

    // Resumptions started (the loop's thread writes, the watch reads); the watch's own state besides.
    private int _resumptionsStarted;
    private int _watchState;
    private int _watching;
    private int _resumptionsAtLastTick;
    private int _quietTicks;

    /// <summary>Whether resumptions still run on the loop.</summary>
    public bool IsInline => _inline;

    /// <summary>The calling thread is the loop's (again, after a take-over).</summary>
    public void BindToCurrentThread() => _loopThread = Environment.CurrentManagedThreadId;

    /// <summary>Whether the watch is parked: it found the loop running no application code for a while.</summary>
    public bool IsWatchParked => Volatile.Read(ref _watchState) == Parked;

    /// <summary>Whether the calling thread was taken over and left the loop (whichever way its frames unwind).</summary>
    public bool LeftByCurrentThread => Volatile.Read(ref _leftBy) == Environment.CurrentManagedThreadId;

    /// <summary>Starts the watch for a resumption that does not return.</summary>
    public void StartWatch()
    {
        if (_inline)
        {
            _watch ??= time.CreateTimer(static s => ((LoopScheduler)s!).Watch(), this, BlockThreshold, BlockThreshold);
        }
    }

    public override void Schedule(Action<object?> action, object? state)
    {
        if (_inline && Environment.CurrentManagedThreadId == _loopThread)
        {
            _ready.Enqueue((action, state));

            // Taken over meanwhile (this is the held thread): the new thread may already have drained the queue.
            if (!_inline)
            {
                Drain();
            }

            return;
        }

        ThreadPool.Schedule(action, state);
    }

    /// <summary>
    /// On the loop's thread, between events: runs every resumption scheduled so far, and those they schedule, each
    /// timed; after a fall-back the rest go to the thread pool. False when the watch took the loop over while one ran:
    /// the calling thread no longer runs the loop and must leave it without touching it. An exception from one leaves
    /// the rest queued (the event loop lets it end its thread, as an exception in a thread-pool work item would end
    /// the process).
    /// </summary>
    public bool RunReady()
    {
        while (_ready.TryDequeue(out var ready))
        {
            if (!_inline)
            {
                ThreadPool.Schedule(ready.Action, ready.State);
                continue;
            }

            var started = time.GetTimestamp();

            // A full fence between this write and the read of _watchState: a watch that parks meanwhile sees it running.
            Interlocked.Exchange(ref _running, started);
            Volatile.Write(ref _resumptionsStarted, _resumptionsStarted + 1);
            if (Volatile.Read(ref _watchState) == Parked)
            {
                Unpark();
            }

            var takenOver = false;
            try
            {
                ready.Action(ready.State);
            }
            finally
            {
                takenOver = Interlocked.Exchange(ref _running, 0) == TakenOver && LeftTheLoop();
                if (!takenOver)
                {
                    // Only this frame and the watch turn _inline off, and the watch only while it is TakenOver.
                    var held = time.GetElapsedTime(started);
                    if (held >= BlockThreshold && _inline)
                    {
                        _inline = false;
                        _watch?.Dispose();
                        blocked(held);
                    }
                }
            }

            if (takenOver)
            {
                // What the held resumption scheduled here after the loop's new thread last drained the queue.
                Drain();
                return false;
            }
        }

        return true;
    }

    /// <summary>The loop is ending: whatever is still queued resumes on the thread pool.</summary>
    public void Abandon()
    {
        // A later thread may be given the loop's id: nothing scheduled from now on may wait for a RunReady.
        _loopThread = -1;
        Drain();
        Dispose();
    }

    public void Dispose() => _watch?.Dispose();

    /// <summary>
    /// The watch: a resumption running for the threshold or longer takes the loop from its thread, once; from then on
    /// the loop's application code runs on the thread pool. A loop that started no resumption for
    /// <see cref="QuietTicksBeforeParking"/> ticks parks the watch, so an idle loop wakes nothing; the next resumption
    /// starts it again.
    /// </summary>
    private void Watch()
    {
        // A timer may run a late tick beside the next one.
        if (Interlocked.Exchange(ref _watching, 1) != 0)
        {
            return;
        }

        try
        {
            var started = Volatile.Read(ref _running);
            if (!_inline)
            {
                return;
            }

            if (started <= 0)
            {
                ParkIfQuiet();
                return;
            }

            _quietTicks = 0;
            var held = time.GetElapsedTime(started);
            if (held < BlockThreshold || Interlocked.CompareExchange(ref _running, TakenOver, started) != started)
            {
                return;
            }

            _inline = false;
            _watch?.Dispose();
            var carriedOn = false;
            try
            {
                carriedOn = takeOver(held);
            }
            finally
            {
                // The held thread waits for this verdict when its resumption returns.
                Volatile.Write(ref _takeOver, carriedOn ? CarriedOn : NoThread);
            }
        }
        finally
        {
            Volatile.Write(ref _watching, 0);
        }
    }

    private void ParkIfQuiet()
    {
        var startedSoFar = Volatile.Read(ref _resumptionsStarted);
        if (startedSoFar != _resumptionsAtLastTick)
        {
            (_resumptionsAtLastTick, _quietTicks) = (startedSoFar, 0);
            return;
        }

        if (++_quietTicks < QuietTicksBeforeParking)
        {
            return;
        }

        // Stopped before it is marked parked: a resumption that unparks it from here on starts it again after this.
        _quietTicks = 0;
        try
        {
            _watch?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile (a fall-back, the loop's end): nothing left to watch.
            return;
        }

        Interlocked.Exchange(ref _watchState, Parked);

        // One that started before it could see the mark (its write of _running is fenced, as this exchange is).
        if (Volatile.Read(ref _running) != 0 || Volatile.Read(ref _resumptionsStarted) != startedSoFar)
        {
            Unpark();
        }
    }

    private void Unpark()
    {
        if (Interlocked.CompareExchange(ref _watchState, Ticking, Parked) == Parked)
        {
            // Disposed at a fall-back or the loop's end: nothing to start then.
            try
            {
                _watch?.Change(BlockThreshold, BlockThreshold);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>
    /// On the held thread, once its resumption returned after the watch took it over: whether a new thread carries the
    /// loop on (this one leaves it), or none could be started (this one goes on as the loop's, handing application code
    /// to the thread pool).
    /// </summary>
    private bool LeftTheLoop()
    {
        var spin = default(SpinWait);
        while (Volatile.Read(ref _takeOver) == Pending)
        {
            spin.SpinOnce();
        }

        if (_takeOver == NoThread)
        {
            return false;
        }

        Volatile.Write(ref _leftBy, Environment.CurrentManagedThreadId);
        return true;
    }

    private void Drain()
    {
        while (_ready.TryDequeue(out var ready))
        {
            ThreadPool.Schedule(ready.Action, ready.State);
        }
    }
}
