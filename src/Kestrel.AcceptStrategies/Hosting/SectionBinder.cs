using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Binds one configuration section onto an options type. Unlike the configuration binder, which throws on the first
/// bad value, it records every unknown key and unparsable value (with a suggestion for a misspelled key, or the section
/// a key belongs to) so that start-up reports them all in one error.
/// </summary>
internal sealed class SectionBinder<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] TOptions>(
    IConfiguration section, string sectionName, Func<TOptions, ConfigurationProblems> problems, IReadOnlyDictionary<string, string> movedKeys)
    : IConfigureOptions<TOptions> where TOptions : class
{
    private static readonly Dictionary<string, PropertyInfo> Properties = typeof(TOptions)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite)
        .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    public void Configure(TOptions options)
    {
        var found = problems(options);
        foreach (var child in section.GetChildren())
        {
            var key = $"{sectionName}:{child.Key}";
            if (!Properties.TryGetValue(child.Key, out var property))
            {
                found.Add(child.Key, UnknownKey(key, child.Key));
                continue;
            }

            if (child.Value is null)
            {
                found.Add(property.Name, $"{key} must be a single value, not a section.");
                continue;
            }

            if (TryParse(property.PropertyType, child.Value.Trim(), out var value, out var expected))
            {
                property.SetValue(options, value);
            }
            else
            {
                found.Add(property.Name, $"{key} = '{child.Value}' is not valid: expected {expected}.");
            }
        }
    }

    private string UnknownKey(string key, string name)
    {
        if (movedKeys.TryGetValue(name, out var elsewhere))
        {
            return $"{key} is not an option of the {sectionName} section: it is {elsewhere}.";
        }

        var suggestion = OptionNames.Closest(name, Properties.Values.Select(p => p.Name).Concat(movedKeys.Keys));
        var hint = suggestion is null ? ""
            : movedKeys.TryGetValue(suggestion, out var moved) ? $" Did you mean {moved}?"
            : $" Did you mean {sectionName}:{suggestion}?";
        return $"{key} is not an option.{hint} The {sectionName} options are {string.Join(", ", Properties.Values.Select(p => p.Name).Order(StringComparer.Ordinal))}.";
    }

    // Each parser returns null for text it does not accept.
    private static readonly Dictionary<Type, (string Expected, Func<string, object?> Parse)> Parsers = new()
    {
        [typeof(int)] = ("a whole number", t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null),
        [typeof(bool)] = ("true or false", t => bool.TryParse(t, out var v) ? v : null),
        [typeof(TimeSpan)] = (
            "a duration as hh:mm:ss or d.hh:mm:ss, such as 00:00:30 for 30 seconds (a bare number would be read as days)",
            t => t.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var v) ? v : null),
        [typeof(string)] = ("text", t => t),
    };

    private static bool TryParse(Type type, string text, out object? value, out string expected)
    {
        if (type.IsEnum)
        {
            // Enum.TryParse also takes numbers and comma lists; only a declared name is a valid choice.
            expected = "one of " + string.Join(", ", Enum.GetNames(type));
            var name = Enum.GetNames(type).FirstOrDefault(n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase));
            value = name is null ? null : Enum.Parse(type, name);
            return value is not null;
        }

        if (!Parsers.TryGetValue(type, out var parser))
        {
            throw new NotSupportedException($"{type} options cannot be bound from configuration.");
        }

        expected = parser.Expected;
        value = parser.Parse(text);
        return value is not null;
    }
}

/// <summary>"Did you mean": the closest known name within a small edit distance, ignoring case.</summary>
internal static class OptionNames
{
    public static string? Closest(string name, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in known)
        {
            var distance = Distance(name.ToUpperInvariant(), candidate.ToUpperInvariant());
            if (distance < bestDistance)
            {
                (best, bestDistance) = (candidate, distance);
            }
        }

        // Up to a third of the name's letters may differ: "Acceptor" finds "Acceptors", "Worker" finds "Workers",
        // "Timeout" finds nothing.
        return bestDistance <= Math.Max(1, name.Length / 3) ? best : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
