using System.Reflection;
using Kestrel.AcceptStrategies;
using Kestrel.AcceptStrategies.WorkerProcesses;

namespace BenchmarkApp;

/// <summary>
/// The command-line keys this app understands. Configuration binding ignores a key nobody reads, so a misspelt
/// <c>--AcceptStrategy:Stratgy=Serialized</c> would silently benchmark the default (with <c>--Baseline=true</c> the
/// library, which reports its own unknown keys, is not even there); this makes it an error instead.
/// </summary>
internal static class KnownArguments
{
    private static readonly string[] s_appKeys = ["urls", "Baseline", "MeterSnapshotPath", "ChildFdProbe", "CrashWorkerAtStart", "CrashWorkerInSlot", "RetainBytesPerRequest", "UnsafePreferInlineScheduling"];
    private static readonly string[] s_prefixes = ["Logging:", "Kestrel:"];

    private static readonly string[] s_optionKeys =
    [
        .. typeof(AcceptStrategyOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => AcceptStrategyOptions.SectionName + ":" + p.Name),
        .. typeof(WorkerProcessOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => WorkerProcessOptions.SectionName + ":" + p.Name),
    ];

    /// <summary>Every key in <paramref name="args"/> that this app would not read.</summary>
    public static IReadOnlyList<string> FindUnknown(string[] args)
    {
        var known = new HashSet<string>(s_appKeys.Concat(s_optionKeys), StringComparer.OrdinalIgnoreCase);

        var unknown = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string key;
            if (arg.StartsWith("--", StringComparison.Ordinal) || arg.StartsWith('/'))
            {
                var name = arg.TrimStart('-', '/');
                var equals = name.IndexOf('=', StringComparison.Ordinal);
                if (equals >= 0)
                {
                    key = name[..equals];
                }
                else
                {
                    key = name;
                    i++; // "--key value"
                }
            }
            else
            {
                var equals = arg.IndexOf('=', StringComparison.Ordinal);
                key = equals > 0 ? arg[..equals] : arg;
            }

            key = key.Replace("__", ":", StringComparison.Ordinal);
            if (!known.Contains(key) && !s_prefixes.Any(p => key.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
            {
                unknown.Add(key);
            }
        }

        return unknown;
    }

    public static string Describe() =>
        string.Join(", ", s_appKeys.Concat(s_optionKeys)) + ", " + string.Join(", ", s_prefixes.Select(p => p + "*"));
}
