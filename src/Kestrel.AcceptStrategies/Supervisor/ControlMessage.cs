using System.Globalization;

namespace Kestrel.AcceptStrategies.Supervisor;

/// <summary>
/// One message on the control socket, the same type on both sides. Worker to supervisor: <c>ready WALL_MS CPU_MS</c>
/// (its own start-up: wall time since its process started, CPU time; a bare <c>ready</c> is fine too),
/// <c>h REQUESTS CONNECTIONS</c> (heartbeat with counts), <c>budget REQUESTS</c>. Supervisor to worker:
/// <c>accept</c>, <c>drain REASON</c>. Short ASCII text, one message per <c>SOCK_SEQPACKET</c> packet.
/// </summary>
internal readonly record struct ControlMessage(
    ControlMessageKind Kind,
    long Requests = 0,
    long Connections = 0,
    WorkerExitReason Reason = default,
    TimeSpan? StartupWall = null,
    TimeSpan? StartupCpu = null)
{
    /// <summary>Start-up figures past this are not believed (a worker that slow has been killed long before).</summary>
    private const long MaxStartupMilliseconds = 24 * 60 * 60 * 1000;

    public static ControlMessage Ready => new(ControlMessageKind.Ready);

    public static ControlMessage ReadyAfter(TimeSpan wall, TimeSpan cpu) =>
        new(ControlMessageKind.Ready, StartupWall: wall, StartupCpu: cpu);

    public static ControlMessage Accept => new(ControlMessageKind.Accept);

    public static ControlMessage Heartbeat(long requests, long connections) => new(ControlMessageKind.Heartbeat, requests, connections);

    public static ControlMessage BudgetSpent(long requests) => new(ControlMessageKind.BudgetSpent, requests);

    public static ControlMessage Drain(WorkerExitReason reason) => new(ControlMessageKind.Drain, Reason: reason);

    public override string ToString() => Kind switch
    {
        ControlMessageKind.Ready when StartupWall is { } wall && StartupCpu is { } cpu =>
            string.Create(CultureInfo.InvariantCulture, $"ready {(long)wall.TotalMilliseconds} {(long)cpu.TotalMilliseconds}"),
        ControlMessageKind.Ready => "ready",
        ControlMessageKind.Accept => "accept",
        ControlMessageKind.Heartbeat => string.Create(CultureInfo.InvariantCulture, $"h {Requests} {Connections}"),
        ControlMessageKind.BudgetSpent => string.Create(CultureInfo.InvariantCulture, $"budget {Requests}"),
        ControlMessageKind.Drain => "drain " + Reason.Name(),
        _ => throw new InvalidOperationException($"Unknown control message kind {Kind}."),
    };

    /// <summary>Parses a packet; false for anything this version does not know (it is ignored, never trusted).</summary>
    public static bool TryParse(string text, out ControlMessage message)
    {
        var parts = text.Split(' ');
        message = default;
        switch (parts[0])
        {
            case "ready":
                // Older workers send a bare "ready", newer ones may add fields: take the two known figures when
                // both are sound, and ignore the rest.
                message = parts.Length >= 3 && TryStartup(parts[1], out var wall) && TryStartup(parts[2], out var cpu)
                    ? ReadyAfter(wall, cpu)
                    : Ready;
                return true;
            case "accept" when parts.Length == 1:
                message = Accept;
                return true;
            case "h" when parts.Length == 3 && TryCount(parts[1], out var requests) && TryCount(parts[2], out var connections):
                message = Heartbeat(requests, connections);
                return true;
            case "budget" when parts.Length == 2 && TryCount(parts[1], out var spent):
                message = BudgetSpent(spent);
                return true;
            case "drain" when parts.Length == 2 && WorkerExitReasons.TryParse(parts[1], out var reason):
                message = Drain(reason);
                return true;
            default:
                return false;
        }
    }

    private static bool TryStartup(string text, out TimeSpan value)
    {
        var sound = TryCount(text, out var milliseconds) && milliseconds <= MaxStartupMilliseconds;
        value = sound ? TimeSpan.FromMilliseconds(milliseconds) : default;
        return sound;
    }

    private static bool TryCount(string text, out long value) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
