using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>What the results were measured on: CPU, memory, kernel, OS, .NET and load-tool versions.</summary>
internal static class MachineInfo
{
    public static IReadOnlyList<(string Name, string Value)> Collect() =>
    [
        ("CPU", FirstValue("/proc/cpuinfo", "model name") ?? RuntimeInformation.ProcessArchitecture.ToString()),
        ("Cores (online)", Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("Memory", FirstValue("/proc/meminfo", "MemTotal") is { } kib && long.TryParse(kib.Split(' ')[0], out var k)
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{k / 1024.0 / 1024:0.0} GiB")
            : "?"),
        ("Kernel", Read("/proc/sys/kernel/osrelease") ?? RuntimeInformation.OSDescription),
        ("OS", FirstValue("/etc/os-release", "PRETTY_NAME", '=')?.Trim('"') ?? RuntimeInformation.OSDescription),
        (".NET runtime", RuntimeInformation.FrameworkDescription),
        ("ab", FirstLine("ab", "-V") ?? "not installed"),
        ("wrk", FirstLine("wrk", "-v") ?? "not installed"),
    ];

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string? FirstValue(string path, string key, char separator = ':') =>
        Read(path)?.Split('\n')
            .Select(l => l.Split(separator, 2))
            .Where(p => p.Length == 2 && p[0].Trim() == key)
            .Select(p => p[1].Trim())
            .FirstOrDefault();

    /// <summary>The first line a tool prints about itself (wrk prints its version on stderr).</summary>
    internal static string? FirstLine(string tool, string argument)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(tool, argument)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var text = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
