namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// The supervisor loop's one timer: it fires once, at the earliest deadline asked for, and reports the time it was
/// planned for, so a late firing shows the loop itself did not run. Used by the loop alone.
/// </summary>
/// <remarks>
/// A deadline is only ever moved earlier, never later, until the timer has fired: after a pause of the whole
/// supervisor, the messages that waited in the workers' sockets are read in the same instant as the timer fires, and
/// postponing the timer for them would lose the lateness that proves the pause (and so kill workers for the
/// supervisor's own silence).
/// </remarks>
internal sealed class DeadlineTimer : IDisposable
{
    private readonly TimeProvider _time;
    private readonly Action<long> _due;
    private readonly ITimer _timer;
    private long _plannedAt = long.MaxValue;

    /// <param name="time">The clock.</param>
    /// <param name="due">Called (on a timer thread) with the planned timestamp when a deadline is reached.</param>
    public DeadlineTimer(TimeProvider time, Action<long> due)
    {
        _time = time;
        _due = due;
        _timer = time.CreateTimer(static state => ((DeadlineTimer)state!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The timestamp the timer is set for; <see cref="long.MaxValue"/> when it is not set.</summary>
    public long PlannedAt => Volatile.Read(ref _plannedAt);

    /// <summary>Fires at <paramref name="deadline"/> unless already set for earlier.</summary>
    public void Request(long deadline)
    {
        // Never planned in the past: a late firing must mean a late loop, not a late request.
        var now = _time.GetTimestamp();
        deadline = Math.Max(deadline, now);
        if (deadline >= PlannedAt)
        {
            return;
        }

        Volatile.Write(ref _plannedAt, deadline);
        var delay = _time.GetElapsedTime(now, deadline);
        _timer.Change(delay > TimeSpan.Zero ? delay : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    public void Dispose() => _timer.Dispose();

    private void Fire()
    {
        var planned = Interlocked.Exchange(ref _plannedAt, long.MaxValue);
        if (planned != long.MaxValue)
        {
            _due(planned);
        }
    }
}
