using System.Globalization;
using System.Text.Json;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// One line of the JSON console formatter: tests match the library's log events by <see cref="EventId"/> and read
/// their structured fields, not the wording of the message.
/// </summary>
internal sealed record LogEvent(int EventId, string Category, string Message, IReadOnlyDictionary<string, string> State)
{
    /// <summary>
    /// Environment for a child whose events should carry the time it logged them (<see cref="Timestamp"/>): the
    /// process's own clock, not when a busy test process got round to reading the line.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> TimestampEnvironment = new Dictionary<string, string>
    {
        ["Logging__Console__FormatterOptions__TimestampFormat"] = "O",
        ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
    };

    /// <summary>When the process logged it, if it was started with <see cref="TimestampEnvironment"/>.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    public string this[string field] => State[field];

    public int Int(string field) => int.Parse(State[field], CultureInfo.InvariantCulture);

    public long Long(string field) => long.Parse(State[field], CultureInfo.InvariantCulture);

    public static bool TryParse(string line, out LogEvent logEvent)
    {
        logEvent = null!;
        if (!line.StartsWith("{\"EventId\":", StringComparison.Ordinal) && !line.StartsWith("{\"Timestamp\":", StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var state = new Dictionary<string, string>();
            if (root.TryGetProperty(nameof(State), out var fields))
            {
                foreach (var field in fields.EnumerateObject())
                {
                    state[field.Name] = field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString()! : field.Value.GetRawText();
                }
            }

            logEvent = new LogEvent(root.GetProperty(nameof(EventId)).GetInt32(), root.GetProperty(nameof(Category)).GetString()!, root.GetProperty(nameof(Message)).GetString()!, state)
            {
                Timestamp = root.TryGetProperty(nameof(Timestamp), out var timestamp) ? timestamp.GetDateTimeOffset() : null,
            };
            return true;
        }
        catch (JsonException)
        {
            // Two processes writing at once can interleave a line; it is not ours to read.
            return false;
        }
    }
}
