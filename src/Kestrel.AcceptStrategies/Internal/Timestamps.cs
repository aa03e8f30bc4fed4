namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// Durations in monotonic timestamp units (<see cref="TimeProvider.GetTimestamp"/>,
/// <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>): the one conversion for every deadline and window kept as
/// a timestamp.
/// </summary>
internal static class Timestamps
{
    // Past any timeout anyone means (decades on a nanosecond clock), and a timestamp plus this still fits in a long:
    // an enormous setting gives a far deadline, not one that overflowed into the past.
    private const double MaxUnits = long.MaxValue / 4;

    /// <summary><paramref name="seconds"/> on a clock of <paramref name="frequency"/> units per second.</summary>
    public static long Units(double seconds, long frequency) => (long)Math.Min(seconds * frequency, MaxUnits);

    /// <summary><paramref name="duration"/> on a clock of <paramref name="frequency"/> units per second (<see cref="System.Diagnostics.Stopwatch.Frequency"/>).</summary>
    public static long Units(TimeSpan duration, long frequency) => Units(duration.TotalSeconds, frequency);

    /// <summary><paramref name="duration"/> on <paramref name="time"/>'s clock.</summary>
    public static long Units(this TimeProvider time, TimeSpan duration) => Units(duration.TotalSeconds, time.TimestampFrequency);

    /// <summary><paramref name="seconds"/> on <paramref name="time"/>'s clock.</summary>
    public static long Units(this TimeProvider time, double seconds) => Units(seconds, time.TimestampFrequency);
}
