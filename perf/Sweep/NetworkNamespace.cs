using System.Diagnostics;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// A private network namespace (root only) so connection-per-request runs start with an empty TIME_WAIT table and the
/// whole ephemeral port range, and nothing outside the sweep shares its loopback. Deleted on dispose.
/// </summary>
internal sealed class NetworkNamespace : IDisposable
{
    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>A new namespace, or null (with the reason) when not root or <c>ip</c> cannot make one.</summary>
    public static NetworkNamespace? TryCreate(out string? whyNot)
    {
        whyNot = null;
        if (Libc.GetEuid() != 0)
        {
            whyNot = "not running as root";
            return null;
        }

        var name = $"sweep{Environment.ProcessId}";
        if (Run("ip", "netns", "add", name) is { } error)
        {
            whyNot = $"`ip netns add` failed ({error}); install iproute2 for clean per-run namespaces";
            return null;
        }

        var ns = new NetworkNamespace(name);
        if ((Run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
            ?? Run("ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000")) is { } setupError)
        {
            ns.Dispose();
            whyNot = $"setting up the namespace failed ({setupError})";
            return null;
        }

        return ns;
    }

    /// <summary>Prefixes a command so it runs inside the namespace.</summary>
    public IEnumerable<string> Wrap(IEnumerable<string> command) => ["ip", "netns", "exec", Name, .. command];

    public void Dispose() => Run("ip", "netns", "del", Name);

    private static string? Run(params string[] command)
    {
        try
        {
            var start = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var argument in command.Skip(1))
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"exit {process.ExitCode}: {stderr.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return e.Message;
        }
    }
}
