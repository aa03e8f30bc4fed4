using System.Collections;
using System.Globalization;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// The scope every log line of a worker carries (as gunicorn and uWSGI prefix theirs): <c>worker PID slot N
/// generation G</c> as text, and <c>Role</c>, <c>Pid</c>, <c>Slot</c>, <c>Generation</c> as fields for structured
/// loggers (JSON console, OpenTelemetry).
/// </summary>
internal sealed class WorkerLogScope(int pid, int slot, int generation) : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly KeyValuePair<string, object?>[] _fields =
    [
        new("Role", "Worker"),
        new("Pid", pid),
        new("Slot", slot),
        new("Generation", generation),
    ];

    private readonly string _text = string.Create(CultureInfo.InvariantCulture, $"worker {pid} slot {slot} generation {generation}");

    public int Count => _fields.Length;

    public KeyValuePair<string, object?> this[int index] => _fields[index];

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)_fields).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => _text;
}
