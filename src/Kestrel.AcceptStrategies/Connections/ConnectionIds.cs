namespace Kestrel.AcceptStrategies.Connections;

/// <summary>Connection ids in Kestrel's format: 13 base-32 characters of a counter seeded with the start time.</summary>
internal static class ConnectionIds
{
    private static readonly char[] s_encode32Chars = "0123456789ABCDEFGHIJKLMNOPQRSTUV".ToCharArray();
    private static long s_lastId = DateTime.UtcNow.Ticks;

    public static string Next() => string.Create(13, Interlocked.Increment(ref s_lastId), static (buffer, value) =>
    {
        for (var i = 12; i >= 0; i--)
        {
            buffer[i] = s_encode32Chars[value & 31];
            value >>= 5;
        }
    });
}
