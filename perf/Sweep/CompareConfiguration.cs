using System.Globalization;
using System.Text.RegularExpressions;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// One server of <c>compare</c>, from <c>label=words</c>: NAME=value words are environment variables, APP=PATH names
/// the app (a .dll run with dotnet, or an executable such as a Native AOT publish or another build of BenchmarkApp),
/// every other word is a command-line argument of the app.
/// </summary>
internal sealed partial record CompareConfiguration(
    string Label, IReadOnlyDictionary<string, string> Environment, string? App, IReadOnlyList<string> Arguments)
{
    /// <summary>Worker processes from <c>--WorkerProcesses:Workers=N</c>; 0 = one process.</summary>
    public int Workers => Arguments.Select(a => WorkersRegex().Match(a)).Where(m => m.Success)
        .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).LastOrDefault();

    /// <summary>Processes that serve requests (and so need warming): the workers, or the one process.</summary>
    public int ServingProcesses => Math.Max(1, Workers);

    /// <summary>The configuration as it was written on the command line.</summary>
    public string Spec => Label + "=" + string.Join(' ', [
        .. Environment.Select(e => $"{e.Key}={e.Value}"),
        .. App is null ? Array.Empty<string>() : [$"APP={App}"],
        .. Arguments]);

    public static CompareConfiguration? Parse(string spec, List<string> errors)
    {
        var equals = spec.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            errors.Add($"'{spec}': a configuration is label=words (e.g. 'baseline=--Baseline=true').");
            return null;
        }

        var label = spec[..equals].Trim();
        if (label.Contains('|', StringComparison.Ordinal) || label.Contains('`', StringComparison.Ordinal))
        {
            errors.Add($"'{label}': a label cannot hold '|' or '`' (it names a row of a Markdown table).");
            return null;
        }

        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var arguments = new List<string>();
        string? app = null;
        foreach (var word in spec[(equals + 1)..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            if (word.StartsWith("APP=", StringComparison.Ordinal))
            {
                if (app is not null)
                {
                    errors.Add($"{label}: APP= is given more than once.");
                }

                app = word.Length == 4 ? "" : SweepOptions.AppPath($"{label}: APP=", word[4..], errors);
                if (app.Length == 0)
                {
                    errors.Add($"{label}: APP= needs a path.");
                }
            }
            else if (EnvironmentWordRegex().IsMatch(word))
            {
                var split = word.IndexOf('=', StringComparison.Ordinal);
                environment[word[..split]] = word[(split + 1)..];
            }
            else
            {
                arguments.Add(word);
            }
        }

        return new CompareConfiguration(label, environment, app, arguments);
    }

    [GeneratedRegex(@"^--WorkerProcesses:Workers=(\d+)$", RegexOptions.IgnoreCase)]
    private static partial Regex WorkersRegex();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*=")]
    private static partial Regex EnvironmentWordRegex();
}
