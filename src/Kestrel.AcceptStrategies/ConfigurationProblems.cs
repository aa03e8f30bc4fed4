namespace Kestrel.AcceptStrategies;

/// <summary>What binding a section found wrong: messages in order, and which properties kept their default for it.</summary>
internal sealed class ConfigurationProblems
{
    private readonly HashSet<string> _unbound = new(StringComparer.OrdinalIgnoreCase);

    public List<string> Messages { get; } = [];

    public void Add(string property, string message)
    {
        _unbound.Add(property);
        Messages.Add(message);
    }

    /// <summary>
    /// Whether the property holds what the user meant: a value that failed to bind leaves its default, and a check that
    /// compares it with another option would report a problem the user does not have.
    /// </summary>
    public bool Bound(string property) => !_unbound.Contains(property);
}
