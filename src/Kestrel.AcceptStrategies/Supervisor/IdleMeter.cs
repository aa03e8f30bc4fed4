namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// How spare one accepting worker is: the share of a recent window it had no request in flight, from the cumulative
/// busy time its heartbeats carry. Pure, on <see cref="TimeProvider"/> timestamps.
/// </summary>
/// <remarks>
/// Between heartbeats the worker is taken to stay as its last one said (busy while a request was in flight): a busy
/// worker reports every 100 ms, and an idle one's first request wakes its heartbeat, so the guess is short-lived;
/// without it an idle worker, heard from only every HangTimeout/4, would look busy long after its last request.
/// </remarks>
internal sealed class IdleMeter
{
    private readonly List<(long At, double Busy, bool InFlight)> _samples = [];

    /// <summary>The last heartbeat said a request was in flight (its share keeps changing until the next one).</summary>
    public bool Serving => _samples.Count > 0 && _samples[^1].InFlight;

    /// <summary>When the last heartbeat came; 0 before any.</summary>
    public long LastAt => _samples.Count > 0 ? _samples[^1].At : 0;

    public void Add(long at, TimeSpan busy, long inFlight, long windowUnits)
    {
        // A counter that went backwards is another process's (never, but not worth a negative share).
        var seconds = _samples.Count > 0 ? Math.Max(busy.TotalSeconds, _samples[^1].Busy) : busy.TotalSeconds;
        _samples.Add((at, seconds, inFlight > 0));

        // Keep one sample at or before the window's start, to interpolate from.
        while (_samples.Count > 2 && _samples[1].At <= at - windowUnits)
        {
            _samples.RemoveAt(0);
        }
    }

    /// <summary>
    /// The share (0..1) of the window up to <paramref name="now"/> the worker was idle, or null while it has been heard
    /// from for less than half the window (just started accepting: not measured yet).
    /// </summary>
    public double? IdleShare(long now, long windowUnits)
    {
        if (_samples.Count == 0)
        {
            return null;
        }

        var start = Math.Max(now - windowUnits, _samples[0].At);
        var span = now - start;
        if (span < windowUnits / 2 || span <= 0)
        {
            return null;
        }

        var busy = BusyAt(now) - BusyAt(start);
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
