using System.IO.Pipelines;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// Where the application's side of one event loop's connections resumes when the user opted into
/// <c>UnsafePreferInlineScheduling</c>: on the loop's thread, so a kept-alive connection's next request runs on the
/// thread that read it, until one resumption holds the loop for <see cref="BlockThreshold"/> or longer. From then on,
/// for the rest of the loop's life, on the thread pool, as without the option; <c>blocked</c> is told once, on the
/// loop's thread, how long that resumption held it.
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
/// A hold is seen when the resumption returns. Code that waits for something only its own loop can deliver (its
/// request body read synchronously, a synchronous write larger than the socket and pipe buffers, a synchronous call
/// served by the same loop) never returns: the cases the option stays unsafe for.
/// </para>
/// </remarks>
internal sealed class LoopScheduler(TimeProvider time, Action<TimeSpan> blocked) : PipeScheduler
{
    /// <summary>How long one resumption may hold the loop before the loop stops running application code.</summary>
    public static readonly TimeSpan BlockThreshold = TimeSpan.FromMilliseconds(100);

    // Only the loop's thread touches the queue: Schedule enqueues only there, RunReady and Abandon run only there.
    private readonly Queue<(Action<object?> Action, object? State)> _ready = new();
    private volatile bool _inline = true;
    private int _loopThread = -1;

    /// <summary>Whether resumptions still run on the loop.</summary>
    public bool IsInline => _inline;

    /// <summary>The calling thread is the loop's.</summary>
    public void BindToCurrentThread() => _loopThread = Environment.CurrentManagedThreadId;

    public override void Schedule(Action<object?> action, object? state)
    {
        if (_inline && Environment.CurrentManagedThreadId == _loopThread)
        {
            _ready.Enqueue((action, state));
            return;
        }

        ThreadPool.Schedule(action, state);
    }

    /// <summary>
    /// On the loop's thread, between events: runs every resumption scheduled so far, and those they schedule, each
    /// timed; after a fall-back the rest go to the thread pool. An exception from one leaves the rest queued (the event
    /// loop lets it end its thread, as an exception in a thread-pool work item would end the process).
    /// </summary>
    public void RunReady()
    {
        while (_ready.TryDequeue(out var ready))
        {
            if (!_inline)
            {
                ThreadPool.Schedule(ready.Action, ready.State);
                continue;
            }

            var started = time.GetTimestamp();
            try
            {
                ready.Action(ready.State);
            }
            finally
            {
                // Only this frame turns _inline off, and it was on when this resumption started.
                var held = time.GetElapsedTime(started);
                if (held >= BlockThreshold)
                {
                    _inline = false;
                    blocked(held);
                }
            }
        }
    }

    /// <summary>The loop is ending: whatever is still queued resumes on the thread pool.</summary>
    public void Abandon()
    {
        // A later thread may be given the loop's id: nothing scheduled from now on may wait for a RunReady.
        _loopThread = -1;
        while (_ready.TryDequeue(out var ready))
        {
            ThreadPool.Schedule(ready.Action, ready.State);
        }
    }
}
