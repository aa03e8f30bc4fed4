namespace BenchmarkApp;

/// <summary>
/// A modelled leak for memory recycling tests (<c>--RetainBytesPerRequest=N</c>): every request keeps N bytes alive
/// for the life of the process, written so the pages count in its resident set.
/// </summary>
internal static class RetainedBytes
{
    private static readonly List<byte[]> s_retained = [];

    public static void Retain(int bytes)
    {
        var block = new byte[bytes];
        Array.Fill(block, (byte)1);
        lock (s_retained)
        {
            s_retained.Add(block);
        }
    }
}
