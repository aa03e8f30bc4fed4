using System.IO.Pipelines;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// Where the application's side of one event loop's connections resumes when the user opted into
/// <c>UnsafePreferInlineScheduling</c>: inline, so a kept-alive connection's next request runs on the thread that read
/// it, until one resumption on the loop's thread holds the loop for <see cref="BlockThreshold"/> or longer. From then
/// on, for the rest of the loop's life, on the thread pool, as without the option; <c>blocked</c> is told once, on
/// the loop's thread, how long that resumption held it.
/// </summary>
/// <remarks>
/// A handler that blocks (a synchronous call, a long computation) stops every connection of its loop while it runs;
/// this bounds that to one occurrence per loop instead of every request. Off the loop's thread (a read resumed on the
/// thread pool after back-pressure) a resumption runs inline there, as <see cref="PipeScheduler.Inline"/> would, and is
/// not timed: it holds no loop. A handler that waits for its own connection's next bytes synchronously
/// (<c>AllowSynchronousIO</c>) still waits for the loop it holds: the one case the option remains unsafe for.
/// </remarks>
internal sealed class LoopScheduler(TimeProvider time, Action<TimeSpan> blocked) : PipeScheduler
{
    /// <summary>How long one resumption may hold the loop before the loop stops running application code.</summary>
    public static readonly TimeSpan BlockThreshold = TimeSpan.FromMilliseconds(100);

    private volatile bool _inline = true;
    private int _loopThread = -1;

    /// <summary>Whether resumptions still run on the loop.</summary>
    public bool IsInline => _inline;

    /// <summary>The calling thread is the loop's: resumptions on it are timed.</summary>
    public void BindToCurrentThread() => _loopThread = Environment.CurrentManagedThreadId;

    public override void Schedule(Action<object?> action, object? state)
    {
        if (!_inline)
        {
            System.Threading.ThreadPool.UnsafeQueueUserWorkItem(action, state, preferLocal: false);
            return;
        }

        if (Environment.CurrentManagedThreadId != _loopThread)
        {
            action(state);
            return;
        }

        var started = time.GetTimestamp();
        try
        {
            action(state);
        }
        finally
        {
            var held = time.GetElapsedTime(started);
            if (held >= BlockThreshold && _inline)
            {
                _inline = false;
                blocked(held);
            }
        }
    }
}
