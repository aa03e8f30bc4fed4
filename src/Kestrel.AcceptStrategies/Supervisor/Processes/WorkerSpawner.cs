using System.Collections;
using System.Runtime.InteropServices;
using System.Text;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>
/// Starts the app again as a worker with <c>posix_spawn(3)</c>, handing over exactly the chosen descriptors.
/// </summary>
/// <remarks>
/// <para>
/// The descriptors are duplicated onto fresh numbers by the spawn's own file actions, in the child only, so the
/// supervisor never clears <c>FD_CLOEXEC</c> on a listening socket, not even for an instant: a process the app
/// starts at the same moment (with <see cref="System.Diagnostics.Process"/> or anything else) inherits nothing.
/// </para>
/// <para>
/// The worker runs the same executable with the same command line (<c>/proc/self/cmdline</c>), so an app host,
/// <c>dotnet app.dll</c> and <c>dotnet exec</c> with host options all restart as they were started. Standard input,
/// output and error are shared with the supervisor, as with Starlet or gunicorn workers.
/// </para>
/// </remarks>
internal static unsafe class WorkerSpawner
{
    // Read at the first spawn and kept: it never changes, and a later read could fail for want of a descriptor.
    private static readonly Lazy<List<string>> CommandLine = new(ReadCommandLine);

    /// <param name="inheritedFds">Descriptors the child gets, renumbered above every one of them.</param>
    /// <param name="environment">The child's environment, given the numbers the descriptors get.</param>
    /// <remarks>
    /// A worker and a successor supervisor (<c>SIGUSR2</c>) alike start with the terminal's signals blocked and take
    /// them over as soon as the library runs in them (<see cref="WorkerSignals"/>): a successor acts on them too, but
    /// only once its host has started, and their default actions would end or stop it before then.
    /// </remarks>
    public static int Spawn(IReadOnlyList<int> inheritedFds, Func<IReadOnlyList<int>, IDictionary<string, string>> environment)
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("The supervisor cannot find its own executable (Environment.ProcessPath is null).");
        var argv = CommandLine.Value;

        // Above every source descriptor, so no dup2 overwrites a descriptor a later one still reads.
        var first = inheritedFds.Count == 0 ? 3 : Math.Max(3, inheritedFds.Max() + 1);
        var targets = Enumerable.Range(first, inheritedFds.Count).ToArray();
        var envp = environment(targets);

        var fileActions = NativeMemory.AllocZeroed(Libc.OpaqueStructBytes);
        var attributes = NativeMemory.AllocZeroed(Libc.OpaqueStructBytes);
        var signals = NativeMemory.AllocZeroed(Libc.OpaqueStructBytes);
        var strings = new List<nint>();
        try
        {
            Check(Libc.PosixSpawnFileActionsInit(fileActions), "posix_spawn_file_actions_init");
            for (var i = 0; i < inheritedFds.Count; i++)
            {
                // dup2 leaves the new descriptor without close-on-exec: the worker inherits it, nothing else does.
                var added = Libc.PosixSpawnFileActionsAddDup2(fileActions, inheritedFds[i], targets[i]);
                if (added == Libc.EBADF && DescriptorLimit.Read().Soft is var soft && (ulong)targets[i] >= soft)
                {
                    // glibc refuses a target at or above the limit with EBADF, which names the wrong cause.
                    throw new IOException(string.Create(
                        System.Globalization.CultureInfo.InvariantCulture,
                        $"Out of descriptors: the worker's inherited descriptors are numbered above the {first - 1} the supervisor has in use, and {targets[i]} is at or above the limit (RLIMIT_NOFILE {DescriptorLimit.Describe(soft)}); {DescriptorLimit.Advice(DescriptorLimit.Suggest(soft))}."));
                }

                Check(added, "posix_spawn_file_actions_adddup2");
            }

            // .NET ignores SIGPIPE and may have signals blocked on this thread; the worker starts clean, except for the
            // terminal's signals, which are the supervisor's: blocked, they stay pending and harmless until the worker
            // catches them (WorkerSignals), however long the runtime takes to start.
            Check(Libc.PosixSpawnAttrInit(attributes), "posix_spawnattr_init");
            Check(Libc.SigEmptySet(signals), "sigemptyset");
            WorkerSignals.AddTo(signals);

            Check(Libc.PosixSpawnAttrSetSigMask(attributes, signals), "posix_spawnattr_setsigmask");
            Check(Libc.SigEmptySet(signals), "sigemptyset");
            Check(Libc.SigAddSet(signals, Libc.SIGPIPE), "sigaddset");
            Check(Libc.PosixSpawnAttrSetSigDefault(attributes, signals), "posix_spawnattr_setsigdefault");
            Check(Libc.PosixSpawnAttrSetFlags(attributes, Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF), "posix_spawnattr_setflags");

            var nativePath = Utf8(path, strings);
            var nativeArgv = Array(argv, strings);
            var nativeEnvp = Array(envp.Select(e => e.Key + "=" + e.Value).ToList(), strings);

            int pid;
            Check(Libc.PosixSpawn(&pid, nativePath, fileActions, attributes, nativeArgv, nativeEnvp), $"posix_spawn of {path}");
            return pid;
        }
        finally
        {
            _ = Libc.PosixSpawnFileActionsDestroy(fileActions);
            _ = Libc.PosixSpawnAttrDestroy(attributes);
            NativeMemory.Free(fileActions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(signals);
            foreach (var s in strings)
            {
                NativeMemory.Free((void*)s);
            }
        }
    }

    /// <summary>The current environment plus <paramref name="extra"/>, which wins.</summary>
    public static Dictionary<string, string> CurrentEnvironment(IEnumerable<KeyValuePair<string, string>> extra)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            result[(string)e.Key] = (string?)e.Value ?? "";
        }

        foreach (var (key, value) in extra)
        {
            result[key] = value;
        }

        return result;
    }

    private static List<string> ReadCommandLine()
    {
        var raw = File.ReadAllBytes("/proc/self/cmdline");
        var args = Encoding.UTF8.GetString(raw).Split('\0');
        return [.. args.Take(raw.Length > 0 && raw[^1] == 0 ? args.Length - 1 : args.Length)];
    }

    private static byte* Utf8(string value, List<nint> owned)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        var p = (byte*)NativeMemory.Alloc((nuint)bytes + 1);
        owned.Add((nint)p);
        Encoding.UTF8.GetBytes(value, new Span<byte>(p, bytes));
        p[bytes] = 0;
        return p;
    }

    private static byte** Array(List<string> values, List<nint> owned)
    {
        var p = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(byte*));
        owned.Add((nint)p);
        for (var i = 0; i < values.Count; i++)
        {
            p[i] = Utf8(values[i], owned);
        }

        return p;
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw DescriptorLimit.IsExhaustion(result)
                ? DescriptorLimit.Failure(call, result)
                : new IOException($"{call} failed: {Libc.ErrnoName(result)} ({Marshal.GetPInvokeErrorMessage(result)})");
        }
    }
}
