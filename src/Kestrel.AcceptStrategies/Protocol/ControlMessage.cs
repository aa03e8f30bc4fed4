using System.Globalization;

namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>
/// One message on the control socket, the same type on both sides. Worker to supervisor: <c>ready WALL_MS CPU_MS</c>
/// (its own start-up: wall time since its process started, CPU time; a bare <c>ready</c> is fine too),
/// <c>h REQUESTS CONNECTIONS OPEN INFLIGHT BUSY_MS ACCEPTED</c> (heartbeat: requests started, connections accepted and
/// still open, requests in flight, milliseconds with at least one request in flight so far, and connections accepted by
/// each acceptor as <c>N,N,…</c> in endpoint order or <c>-</c>; the first two alone are fine too),
/// <c>budget REQUESTS</c>. Supervisor to worker:
/// <c>accept</c>, <c>drain REASON</c>. Short ASCII text, one message per <c>SOCK_SEQPACKET</c> packet.
/// </summary>
internal readonly record struct ControlMessage(
    ControlMessageKind Kind,
    long Requests = 0,
    long Connections = 0,
    WorkerExitReason Reason = default,
    TimeSpan? StartupWall = null,
    TimeSpan? StartupCpu = null,
    long OpenConnections = 0,
    long InFlight = 0,
    long BusyMilliseconds = 0,
    long[]? Accepted = null)
{
    /// <summary>Start-up figures past this are not believed (a worker that slow has been killed long before).</summary>
    private const long MaxStartupMilliseconds = 24 * 60 * 60 * 1000;

    public static ControlMessage Ready => new(ControlMessageKind.Ready);

    public static ControlMessage ReadyAfter(TimeSpan wall, TimeSpan cpu) =>
        new(ControlMessageKind.Ready, StartupWall: wall, StartupCpu: cpu);

    public static ControlMessage Accept => new(ControlMessageKind.Accept);

    public static ControlMessage Heartbeat(long requests, long connections) => new(ControlMessageKind.Heartbeat, requests, connections);

    public static ControlMessage Heartbeat(long requests, long connections, long open, long inFlight, long busyMilliseconds, long[] accepted) =>
        new(ControlMessageKind.Heartbeat, requests, connections, OpenConnections: open, InFlight: inFlight, BusyMilliseconds: busyMilliseconds, Accepted: accepted);

    /// <summary>Same figures as <paramref name="other"/>, the per-acceptor counts compared by value.</summary>
    public bool SameCounts(ControlMessage other) =>
        this with { Accepted = null } == other with { Accepted = null } && (Accepted ?? []).AsSpan().SequenceEqual(other.Accepted ?? []);

    public static ControlMessage BudgetSpent(long requests) => new(ControlMessageKind.BudgetSpent, requests);

    public static ControlMessage Drain(WorkerExitReason reason) => new(ControlMessageKind.Drain, Reason: reason);

    public override string ToString() => Kind switch
    {
        ControlMessageKind.Ready when StartupWall is { } wall && StartupCpu is { } cpu =>
            string.Create(CultureInfo.InvariantCulture, $"ready {(long)wall.TotalMilliseconds} {(long)cpu.TotalMilliseconds}"),
        ControlMessageKind.Ready => "ready",
        ControlMessageKind.Accept => "accept",
        ControlMessageKind.Heartbeat when Accepted is null => string.Create(CultureInfo.InvariantCulture, $"h {Requests} {Connections}"),
        ControlMessageKind.Heartbeat => string.Create(
            CultureInfo.InvariantCulture,
            $"h {Requests} {Connections} {OpenConnections} {InFlight} {BusyMilliseconds} {(Accepted.Length == 0 ? "-" : string.Join(',', Accepted))}"),
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
            case "h" when parts.Length == 7 && TryCount(parts[1], out var requests) && TryCount(parts[2], out var connections)
                && TryCount(parts[3], out var open) && TryCount(parts[4], out var inFlight) && TryCount(parts[5], out var busy)
                && TryCounts(parts[6], out var accepted):
                message = Heartbeat(requests, connections, open, inFlight, busy, accepted);
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

    private static bool TryCounts(string text, out long[] values)
    {
        values = [];
        if (text == "-")
        {
            return true;
        }

        var parts = text.Split(',');
        var parsed = new long[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!TryCount(parts[i], out parsed[i]))
            {
                return false;
            }
        }

        values = parsed;
        return true;
    }

    private static bool TryCount(string text, out long value) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
