using System.Text;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Worker mode: the supervisor and its workers share standard output and error, and .NET's console writer flushes
/// in 256-byte pieces, so two processes' lines longer than that interleave mid-line (a JSON log line then parses as
/// nothing). Here each write to the console is one <c>write(2)</c>: atomic on a pipe up to PIPE_BUF (4096 bytes),
/// and written whole to a terminal. Nothing else changes: every write is still flushed at once.
/// </summary>
internal static class AtomicConsole
{
    private const int BufferChars = 16 * 1024;
    private static int s_installed;

    public static bool Installed => Volatile.Read(ref s_installed) != 0;

    /// <summary>Installs the writers once, before the logging providers take <see cref="Console.Out"/>.</summary>
    public static void Install()
    {
        if (Interlocked.Exchange(ref s_installed, 1) != 0)
        {
            return;
        }

        var encoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
        Console.SetOut(new StreamWriter(Console.OpenStandardOutput(), encoding, BufferChars, leaveOpen: true) { AutoFlush = true });
        Console.SetError(new StreamWriter(Console.OpenStandardError(), encoding, BufferChars, leaveOpen: true) { AutoFlush = true });
    }
}
