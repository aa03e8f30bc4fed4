namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// The connections of one event loop, by the 64-bit token their epoll registration carries: a slot and a
/// generation, so an event read for a connection that has since closed never reaches the one that took its slot.
/// </summary>
/// <remarks>
/// Slots are taken and looked up on the loop's thread only; a connection frees its slot from whatever thread closes it,
/// through a queue the loop drains when it next takes one.
/// </remarks>
internal sealed class ConnectionTable
{
    private NativeConnection?[] _slots = new NativeConnection?[64];
    private uint[] _generations = new uint[64];

    public ConnectionTable()
    {
    }

    /// <summary>A table whose slots start at <paramref name="generation"/>: a wrap is reached in a test, not after 2^32 connections.</summary>
    internal ConnectionTable(uint generation) => Array.Fill(_generations, generation);
    private readonly Stack<int> _free = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _released = new();
    private int _used;

    /// <summary>Takes a slot for <paramref name="connection"/>; returns the token for its epoll registration.</summary>
    public ulong Add(NativeConnection connection)
    {
        while (_released.TryDequeue(out var released))
        {
            _slots[released] = null;
            _free.Push(released);
        }

        if (!_free.TryPop(out var slot))
        {
            if (_used == _slots.Length)
            {
                Array.Resize(ref _slots, _slots.Length * 2);
                Array.Resize(ref _generations, _generations.Length * 2);
            }

            slot = _used++;
        }

        _slots[slot] = connection;
        // Never generation 0: a token must stay above the loop's own (listening socket, signals) after a wrap.
        var generation = ++_generations[slot];
        if (generation == 0)
        {
            generation = _generations[slot] = 1;
        }

        return ((ulong)generation << 32) | (uint)slot;
    }

    /// <summary>The connection a token names, or null when its slot has been released (and perhaps reused) since.</summary>
    public NativeConnection? Find(ulong token)
    {
        var slot = (int)(uint)token;
        return slot < _used && _generations[slot] == (uint)(token >> 32) ? _slots[slot] : null;
    }

    /// <summary>Every connection still registered (the loop's thread only), to abort them when the loop ends.</summary>
    public List<NativeConnection> Snapshot() => [.. _slots.Take(_used).OfType<NativeConnection>()];

    /// <summary>Gives the slot back; any thread, once per token. Events already read for it are dropped.</summary>
    public void Release(ulong token) => _released.Enqueue((int)(uint)token);
}
