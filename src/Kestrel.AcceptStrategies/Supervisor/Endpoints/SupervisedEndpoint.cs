using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Supervisor.Endpoints;

/// <summary>
/// One endpoint bound by the supervisor: a shared listening socket, or (<see cref="AcceptStrategy.ReusePort"/>) one
/// group of <c>SO_REUSEPORT</c> sockets per worker slot, held across the slot's generations so a recycling
/// worker's queued connections wait for its successor instead of being reset. Under
/// <see cref="AcceptStrategy.Serialized"/> also the endpoint's own accept lock file: its acceptors in every worker
/// take turns among themselves only, as one process's listeners each have a mutex of their own, because an acceptor
/// waits for a connection while it holds the lock and must not keep another endpoint's acceptors waiting meanwhile.
/// </summary>
internal sealed class SupervisedEndpoint : IDisposable
{
    private Socket? _shared;
    private readonly AcceptLockFile? _acceptLock;
    // Null where a slot was released without steering (the adaptive pool drained a middle slot) and not yet taken again.
    private readonly List<Socket[]?> _slots = [];
    // The group index of each slot's sockets: the order they started listening (see ReusePortSteering).
    private readonly List<int[]?> _indices = [];
    private readonly int _acceptorsPerSlot;
    private readonly bool _deferAccept;
    private readonly SocketTransportOptions _socketOptions;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    // Unix sockets whose file a successor serves: never disposed, so .NET never deletes the file (LeaveFileToSuccessor).
    private static readonly List<Socket> s_leftToSuccessor = [];

    // Members no slot uses (see the constructor); their group indices follow the slots' at start.
    private readonly List<(Socket Socket, int Index)> _spare = [];
    private int _members;
    private int[] _steeredTo = [];
    private bool _steering;
    private bool _handedOver;

    // A Unix socket handed over by a previous supervisor: .NET will not delete its file (this process did not bind it),
    // so this endpoint does at the end, as for a socket it bound, once it is this supervisor's (the predecessor was
    // told it serves) and unless it hands it over in turn.
    private readonly string? _unixPath;
    private bool _ownsFile;
    private bool _disposed;

    // acceptLock: owned from here on; null unless the workers accept Serialized.
    public SupervisedEndpoint(
        string requested, Socket[] sockets, AcceptStrategy strategy, int acceptors, bool deferAccept, SocketTransportOptions socketOptions, ILogger logger, AcceptLockFile? acceptLock = null, string? adoptedUnixPath = null)
    {
        _unixPath = adoptedUnixPath;
        Requested = requested;
        _acceptLock = acceptLock;
        BoundEndPoint = sockets[0].LocalEndPoint!;
        _acceptorsPerSlot = acceptors;
        _deferAccept = deferAccept;
        _socketOptions = socketOptions;
        _logger = logger;
        if (strategy == AcceptStrategy.ReusePort)
        {
            // Sockets handed over by a previous supervisor with other Acceptors may not fill the last slot: kept open
            // (closing would renumber the group), out of every program.
            foreach (var group in sockets.Chunk(acceptors))
            {
                if (group.Length == acceptors)
                {
                    _slots.Add(group);
                    _indices.Add([.. Enumerable.Range(_members, group.Length)]);
                }
                else
                {
                    _spare.AddRange(group.Select((socket, i) => (socket, _members + i)));
                }

                _members += group.Length;
            }

            _steering = true;
        }
        else
        {
            _shared = sockets[0];
            if (sockets.Length > 1)
            {
                // A previous supervisor's ReusePort group, handed over to a shared strategy: the first socket serves,
                // and the program sends every new connection to it. The others stay open until this endpoint closes:
                // the previous workers take what is queued on them as they drain, and closing one would reset its queue.
                _spare.AddRange(sockets[1..].Select((socket, i) => (socket, i + 1)));
                var errno = ReusePortSteering.Attach(_shared, [0]);
                if (errno != 0)
                {
                    AcceptStrategyLog.SteeringUnavailable(logger, requested, Libc.ErrnoName(errno), 1);
                }
            }
        }
    }

    /// <summary>The endpoint as Kestrel asked for it (port 0 included): what a worker's Kestrel will ask for too.</summary>
    public string Requested { get; }

    /// <summary>The address bound: an <see cref="IPEndPoint"/> (port 0 resolved) or a Unix socket's path.</summary>
    public EndPoint BoundEndPoint { get; }

    /// <summary>The listening sockets each new slot binds for this endpoint (ReusePort), 0 when the workers share one.</summary>
    public int SocketsPerSlot => _shared is null ? _acceptorsPerSlot : 0;

    /// <summary>
    /// The descriptors a worker in <paramref name="slot"/> inherits for this endpoint: its listening sockets (bound
    /// now if the slot is new) and its accept lock, if any.
    /// </summary>
    public (int[] Sockets, int? Lock) FdsFor(int slot)
    {
        lock (_gate)
        {
            // A disposed socket's number may already belong to something else: never hand it to a worker.
            if (_disposed)
            {
                throw new ObjectDisposedException(
                    nameof(SupervisedEndpoint), $"The supervisor's sockets for {Requested} are closed (Kestrel unbound the endpoint); they cannot be handed to a worker.");
            }

            if (_shared is not null)
            {
                return ([Fd(_shared)], _acceptLock?.Fd);
            }

            while (_slots.Count <= slot)
            {
                _slots.Add(null);
                _indices.Add(null);
            }

            if (_slots[slot] is null)
            {
                // A successor counts the group's members from what it was handed: one bound here now would move its indices.
                if (_handedOver)
                {
                    throw new InvalidOperationException($"The sockets for {Requested} are being handed to a successor supervisor (SIGUSR2); no new slot is bound until it serves or fails.");
                }

                var group = new List<Socket>(_acceptorsPerSlot);
                try
                {
                    while (group.Count < _acceptorsPerSlot)
                    {
                        group.Add(ListenSocketBinder.BindReusePortMember((IPEndPoint)BoundEndPoint, _deferAccept, _socketOptions));
                    }
                }
                catch
                {
                    // The last members of the group: closing them moves no other socket's index.
                    group.ForEach(s => s.Dispose());
                    throw;
                }

                _slots[slot] = [.. group];
                _indices[slot] = [.. Enumerable.Range(_members, group.Count)];
                _members += group.Count;
            }

            return ([.. _slots[slot]!.Select(Fd)], _acceptLock?.Fd);
        }
    }

    /// <summary>
    /// A slot was removed (scaling down). Where connections are steered its sockets stay open, out of the program, for
    /// the next slot of that index: its worker takes what was queued when it drains, and closing a member would move
    /// another's index. Otherwise the supervisor's copies are closed; the slot's worker holds the last ones, and a
    /// connection the kernel queued on them after that worker's last accept is reset when it closes them, unless
    /// <c>net.ipv4.tcp_migrate_req</c> is 1, which moves it to another socket of the group.
    /// </summary>
    public void ReleaseSlot(int slot)
    {
        lock (_gate)
        {
            if (_shared is null && !_steering && !_handedOver && slot < _slots.Count && _slots[slot] is { } group)
            {
                foreach (var socket in group)
                {
                    socket.Dispose();
                }

                _slots[slot] = null;
                _indices[slot] = null;
            }
        }
    }

    /// <summary>
    /// ReusePort: new connections go to the sockets of <paramref name="slots"/> only (those bound so far), spread by
    /// flow hash. Where the kernel refuses the program, logged once, connections go on being hashed over every socket.
    /// </summary>
    public void Steer(IReadOnlyList<int> slots)
    {
        lock (_gate)
        {
            if (_shared is not null || !_steering || _handedOver || _disposed)
            {
                return;
            }

            int[] targets = [.. slots.Where(s => s < _indices.Count).SelectMany(s => _indices[s] ?? []).Order()];
            if (targets.Length == 0 || targets.AsSpan().SequenceEqual(_steeredTo))
            {
                return;
            }

            var member = _slots.First(g => g is not null)![0];
            var errno = targets.Length > ReusePortSteering.MaxTargets ? Libc.E2BIG : ReusePortSteering.Attach(member, targets);
            if (errno != 0)
            {
                // Back to the kernel's own hash over every socket, as the log says, not a program that no longer fits.
                _ = ReusePortSteering.Detach(member);
                _steering = false;
                AcceptStrategyLog.SteeringUnavailable(_logger, Requested, Libc.ErrnoName(errno), targets.Length);
                return;
            }

            _steeredTo = targets;
            AcceptStrategyLog.Steered(_logger, Requested, string.Join(",", slots), targets.Length);
        }
    }

    /// <summary>
    /// Every listening socket of this endpoint, in group order, for a successor supervisor (<c>SIGUSR2</c>); this one
    /// steers no more from here on, and closes nothing but its own copies.
    /// </summary>
    public int[] HandoverFds()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                throw new ObjectDisposedException(nameof(SupervisedEndpoint), $"The supervisor's sockets for {Requested} are closed; there is nothing to hand over.");
            }

            _handedOver = true;
            if (_shared is not null)
            {
                return [Fd(_shared), .. _spare.Select(p => Fd(p.Socket))];
            }

            var indexed = _slots.Zip(_indices).Where(p => p.First is not null).SelectMany(p => p.First!.Zip(p.Second!)).Concat(_spare);
            return [.. indexed.OrderBy(p => p.Item2).Select(p => Fd(p.Item1))];
        }
    }

    /// <summary>
    /// The successor serves: .NET deletes a Unix socket's file when the <see cref="Socket"/> that bound it is disposed,
    /// and the file is the successor's now. That socket is kept (never disposed: the process is on its way out) and
    /// this endpoint goes on with a duplicate, which closes without deleting anything.
    /// </summary>
    public void LeaveFileToSuccessor()
    {
        lock (_gate)
        {
            if (_disposed || _shared is not { AddressFamily: AddressFamily.Unix } bound || _unixPath is not null)
            {
                return;
            }

            _shared = ListenSocketBinder.Duplicate(bound);
            lock (s_leftToSuccessor)
            {
                s_leftToSuccessor.Add(bound);
            }
        }
    }

    /// <summary>This supervisor serves, having told its predecessor: a Unix socket file it was handed is its own to remove.</summary>
    public void OwnAdoptedFile()
    {
        lock (_gate)
        {
            _ownsFile = _unixPath is not null;
        }
    }

    /// <summary>The successor failed: this supervisor steers again (the next <see cref="Steer"/> attaches its program whatever was attached before).</summary>
    public void TakeBack()
    {
        lock (_gate)
        {
            _handedOver = false;
            _steeredTo = [];
            if (_shared is not null && _spare.Count > 0 && !_disposed)
            {
                // A group served through its first socket: the failed successor may have attached a program of its own.
                _ = ReusePortSteering.Attach(_shared, [0]);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (!_disposed && !_handedOver && _ownsFile && _unixPath is not null)
            {
                try
                {
                    File.Delete(_unixPath);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // As .NET does for a socket it bound: a file that cannot be removed stays.
                }
            }

            _disposed = true;
            _shared?.Dispose();
            _acceptLock?.Dispose();
            foreach (var socket in _slots.SelectMany(s => s ?? []).Concat(_spare.Select(p => p.Socket)))
            {
                socket.Dispose();
            }

            _slots.Clear();
            _spare.Clear();
        }
    }

    private static int Fd(Socket socket) => (int)socket.SafeHandle.DangerousGetHandle();
}
