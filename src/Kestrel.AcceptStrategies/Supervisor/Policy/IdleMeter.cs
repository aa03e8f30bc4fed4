namespace Kestrel.AcceptStrategies.Supervisor.Policy;

/// <summary>
/// How spare one accepting worker is: the share of a recent window it had no request in flight, from the cumulative
/// busy time its heartbeats carry. Pure, on <see cref="TimeProvider"/> timestamps.
/// </summary>
/// <remarks>
/// A worker whose last heartbeat had a request in flight is measured up to that heartbeat (it reports every 100 ms
/// while it serves, so that is fresh; assuming it busy since would overstate a partly busy one). One whose last
/// heartbeat had none is measured up to now, idle since: it reports only every HangTimeout/4 while idle, and its first
/// request wakes its heartbeat, so its share rises as its idle spell goes on.
/// </remarks>
internal sealed class IdleMeter
{
    // Busy time reported but not yet counted, up to this many seconds: a heartbeat read a little late is made up for
    // at the next one, a pause's worth is not.
    private const double MaxCarried = 0.05;

    private readonly List<(long At, double Busy, bool InFlight)> _samples = [];
    private double _reported;
    private double _carried;

    /// <summary>The last heartbeat said a request was in flight (its share keeps changing until the next one).</summary>
    public bool Serving => _samples.Count > 0 && _samples[^1].InFlight;

    /// <summary>When the last heartbeat came; 0 before any.</summary>
    public long LastAt => _samples.Count > 0 ? _samples[^1].At : 0;

    public void Add(long at, TimeSpan busy, long inFlight, long windowUnits)
    {
        // Each step counts at most the time since the previous heartbeat was read: heartbeats that waited unread while
        // the supervisor was paused arrive together, and their busy time must not land in the moment they are read.
        var seconds = busy.TotalSeconds;
        if (_samples.Count > 0)
        {
            var owed = Math.Max(0, busy.TotalSeconds - _reported) + _carried;
            var step = Math.Min(owed, (at - _samples[^1].At) / Frequency);
            _carried = Math.Min(owed - step, MaxCarried);
            seconds = _samples[^1].Busy + step;
        }

        _reported = busy.TotalSeconds;
        _samples.Add((at, seconds, inFlight > 0));

        // Keep one sample at or before the window's start, to interpolate from.
        while (_samples.Count > 2 && _samples[1].At <= at - windowUnits)
        {
            _samples.RemoveAt(0);
        }
    }

    /// <summary>
    /// The share (0..1) of the window up to <paramref name="now"/> (or its last heartbeat, see the remarks) the worker was
    /// idle, or null while it has been heard from for less than half the window (just started accepting).
    /// </summary>
    public double? IdleShare(long now, long windowUnits)
    {
        if (_samples.Count == 0)
        {
            return null;
        }

        var end = _samples[^1].InFlight ? Math.Min(now, _samples[^1].At) : now;
        var start = Math.Max(end - windowUnits, _samples[0].At);
        var span = end - start;
        if (span < windowUnits / 2 || span <= 0)
        {
            return null;
        }

        var busy = BusyAt(end) - BusyAt(start);
        return Math.Clamp(1 - busy / span, 0, 1);
    }

    /// <summary>Busy time up to <paramref name="at"/>, in timestamp units.</summary>
    private double BusyAt(long at)
    {
        var i = _samples.FindLastIndex(s => s.At <= at);
        if (i < 0)
        {
            return _samples[0].Busy * Frequency;
        }

        var (sampledAt, busy, inFlight) = _samples[i];
        var units = busy * Frequency + (inFlight ? at - sampledAt : 0);
        return i + 1 < _samples.Count ? Math.Min(units, _samples[i + 1].Busy * Frequency) : units;
    }

    /// <summary>Timestamp units per second: set once from the policy's clock.</summary>
    public required double Frequency { get; init; }
}
