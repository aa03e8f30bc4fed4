namespace Kestrel.AcceptStrategies.Protocol;

/// <summary>What a <see cref="ControlMessage"/> says.</summary>
internal enum ControlMessageKind
{
    /// <summary>Worker: warmed up, ready to accept.</summary>
    Ready,

    /// <summary>Worker: alive, with its request and connection counts so far.</summary>
    Heartbeat,

    /// <summary>Worker: the request that spent its budget has started.</summary>
    BudgetSpent,

    /// <summary>Supervisor: start accepting.</summary>
    Accept,

    /// <summary>Supervisor: stop accepting, finish, exit 0.</summary>
    Drain,
}
