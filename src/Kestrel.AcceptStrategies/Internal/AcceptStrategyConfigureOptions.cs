using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// Binds the <c>AcceptStrategy</c> section. Unlike the configuration binder, which throws on the first bad value,
/// it records every unknown key and unparsable value so that start-up reports them all in one error.
/// </summary>
internal sealed class AcceptStrategyConfigureOptions(IConfiguration section) : IConfigureOptions<AcceptStrategyOptions>
{
    private static readonly Dictionary<string, PropertyInfo> Properties = typeof(AcceptStrategyOptions)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite)
        .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    public void Configure(AcceptStrategyOptions options)
    {
        foreach (var child in section.GetChildren())
        {
            var key = $"{AcceptStrategyOptions.SectionName}:{child.Key}";
            if (!Properties.TryGetValue(child.Key, out var property))
            {
                options.ConfigurationErrors.Add(
                    $"{key} is not an option; known options are {string.Join(", ", Properties.Keys.Order(StringComparer.Ordinal))}.");
                continue;
            }

            if (child.Value is null)
            {
                options.ConfigurationErrors.Add($"{key} must be a single value, not a section.");
                continue;
            }

            if (TryParse(property.PropertyType, child.Value.Trim(), out var value, out var expected))
            {
                property.SetValue(options, value);
            }
            else
            {
                options.ConfigurationErrors.Add($"{key} = '{child.Value}' is not valid: expected {expected}.");
            }
        }
    }

    // Each parser returns null for text it does not accept.
    private static readonly Dictionary<Type, (string Expected, Func<string, object?> Parse)> Parsers = new()
    {
        [typeof(int)] = ("a whole number", t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null),
        [typeof(bool)] = ("true or false", t => bool.TryParse(t, out var v) ? v : null),
        [typeof(TimeSpan)] = ("a duration such as 00:00:30", t => TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var v) ? v : null),
        [typeof(double)] = ("a number", t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null),
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
