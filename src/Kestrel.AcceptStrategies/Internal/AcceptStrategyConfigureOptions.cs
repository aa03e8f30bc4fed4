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

    private static bool TryParse(Type type, string text, out object? value, out string expected)
    {
        value = null;
        if (type.IsEnum)
        {
            expected = "one of " + string.Join(", ", Enum.GetNames(type));
            // Enum.TryParse also takes numbers and comma lists; only a declared name is a valid choice.
            var name = Enum.GetNames(type).FirstOrDefault(n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase));
            value = name is null ? null : Enum.Parse(type, name);
            return name is not null;
        }

        if (type == typeof(int))
        {
            expected = "a whole number";
            var ok = int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i);
            value = i;
            return ok;
        }

        if (type == typeof(bool))
        {
            expected = "true or false";
            var ok = bool.TryParse(text, out var b);
            value = b;
            return ok;
        }

        if (type == typeof(TimeSpan))
        {
            expected = "a duration such as 00:00:30";
            var ok = TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var t);
            value = t;
            return ok;
        }

        if (type == typeof(double))
        {
            expected = "a number";
            var ok = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d);
            value = d;
            return ok;
        }

        if (type == typeof(string))
        {
            expected = "text";
            value = text;
            return true;
        }

        throw new NotSupportedException($"{type} options cannot be bound from configuration.");
    }
}
