using System.Globalization;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// The process's descriptor limit (<c>RLIMIT_NOFILE</c>) in the words a user can act on: a call that failed for want of
/// descriptors says so and names the limit and the fix, instead of a bare errno (or, from <c>posix_spawn</c>'s file
/// actions, a misleading <c>EBADF</c>).
/// </summary>
internal static class DescriptorLimit
{
    /// <summary>The soft and hard limits; <see cref="ulong.MaxValue"/> when unlimited or unreadable.</summary>
    public static unsafe (ulong Soft, ulong Hard) Read()
    {
        Libc.ResourceLimit limit;
        return Libc.GetRLimit(Libc.RLIMIT_NOFILE, &limit) == 0 ? (limit.Current, limit.Maximum) : (ulong.MaxValue, ulong.MaxValue);
    }

    /// <summary>Descriptors this process has open now (the runtime keeps each loaded assembly file open).</summary>
    public static int OpenNow() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    /// <summary>True for the errors that mean "no descriptor left": this process's limit, or the system's.</summary>
    public static bool IsExhaustion(int errno) => errno is Libc.EMFILE or Libc.ENFILE;

    /// <summary>How to raise the limit to <paramref name="needed"/>, for a log line or an exception.</summary>
    public static string Advice(ulong needed) => string.Create(
        CultureInfo.InvariantCulture,
        $"raise it to at least {needed}: `ulimit -n {needed}` in the shell that starts the app, or LimitNOFILE={needed} in its systemd unit");

    /// <summary>The error for <paramref name="call"/> failing with <paramref name="errno"/>, naming the limit when it was the cause.</summary>
    public static IOException Failure(string call, int errno, string? otherwise = null)
    {
        if (errno == Libc.ENFILE)
        {
            return new IOException($"{call} failed: ENFILE: the system has no descriptor left (fs.file-max); close descriptors elsewhere or raise it with sysctl.");
        }

        if (errno == Libc.EMFILE)
        {
            var (soft, _) = Read();
            return new IOException(
                $"{call} failed: EMFILE: this process has as many descriptors open as its limit allows (RLIMIT_NOFILE {Describe(soft)}); {Advice(Suggest(soft))}.");
        }

        return new IOException($"{call} failed: {Libc.ErrnoName(errno)}{(otherwise is null ? "" : ". " + otherwise)}");
    }

    /// <summary>
    /// <paramref name="what"/> failed for want of descriptors (.NET reports <c>EMFILE</c> and <c>ENFILE</c> alike), as
    /// one error naming the limit and the fix.
    /// </summary>
    public static IOException OutOfDescriptors(string what, Exception inner)
    {
        var (soft, _) = Read();
        return new IOException(
            $"{what} failed: out of descriptors. This process may have {Describe(soft)} open (RLIMIT_NOFILE); {Advice(Suggest(soft))}. (If the limit is already high, the system's fs.file-max is exhausted.)",
            inner);
    }

    /// <summary>A limit to suggest above <paramref name="soft"/>: twice it, at least 4096.</summary>
    public static ulong Suggest(ulong soft) => soft >= ulong.MaxValue / 2 ? soft : Math.Max(4096, soft * 2);

    public static string Describe(ulong limit) => limit == ulong.MaxValue ? "unlimited" : limit.ToString(CultureInfo.InvariantCulture);
}
