using System.Buffers;
using System.IO.Pipelines;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// What every connection of a listener shares: the memory pool, the pipe options and the abort behaviour, set as
/// Kestrel's socket transport sets them from <see cref="SocketTransportOptions"/>, and the transport log.
/// </summary>
internal sealed class NativeConnectionSettings : IDisposable
{
    private readonly bool _ownsPool;
    private readonly long _maxRead;
    private readonly long _maxWrite;

    /// <summary>Kestrel's pinned-block pool from <paramref name="memoryPoolFactory"/> when the host has one (it does under Kestrel).</summary>
    public NativeConnectionSettings(IMemoryPoolFactory<byte>? memoryPoolFactory, SocketTransportOptions options, ILogger logger)
    {
        var memoryPool = memoryPoolFactory?.Create(new MemoryPoolOptions { Owner = "accept_strategies" });
        _ownsPool = memoryPool is not null;
        MemoryPool = memoryPool ?? MemoryPool<byte>.Shared;
        Logger = logger;
        FinOnError = SocketTransportInternals.FinOnError(options);

        // The application's side resumes on the thread pool; under UnsafePreferInlineScheduling each event loop gives its
        // connections its own scheduler instead (ForLoop). The transport's side (our reads of the output pipe) always
        // resumes inline, on the thread that flushed.
        InlineScheduling = options.UnsafePreferInlineScheduling;
        _maxRead = options.MaxReadBufferSize ?? 0;
        _maxWrite = options.MaxWriteBufferSize ?? 0;
        (InputOptions, OutputOptions) = PipeOptionsFor(PipeScheduler.ThreadPool);
    }

    private NativeConnectionSettings(NativeConnectionSettings shared, PipeScheduler application)
    {
        MemoryPool = shared.MemoryPool;
        Logger = shared.Logger;
        FinOnError = shared.FinOnError;
        InlineScheduling = shared.InlineScheduling;
        _maxRead = shared._maxRead;
        _maxWrite = shared._maxWrite;
        (InputOptions, OutputOptions) = PipeOptionsFor(application);
    }

    /// <summary>The smallest buffer a read asks the pipe for: one of Kestrel's 4 KB pool blocks.</summary>
    public const int MinimumReadSize = 4096;

    public MemoryPool<byte> MemoryPool { get; }

    public PipeOptions InputOptions { get; }

    public PipeOptions OutputOptions { get; }

    /// <summary>An abort sends FIN, not RST (the <c>Microsoft.AspNetCore.Server.Kestrel.FinOnError</c> switch).</summary>
    public bool FinOnError { get; }

    /// <summary>The transport events (<see cref="ConnectionLog"/>).</summary>
    public ILogger Logger { get; }

    /// <summary>The user opted into <c>UnsafePreferInlineScheduling</c>.</summary>
    public bool InlineScheduling { get; }

    /// <summary>These settings with the application's side resumed by <paramref name="application"/> (one event loop's); the pool stays this one's.</summary>
    public NativeConnectionSettings ForLoop(PipeScheduler application) => new(this, application);

    /// <summary>Once the listener's connections are gone.</summary>
    public void Dispose()
    {
        // A loop's copy shares the listener's pool and leaves it to the listener.
        if (_ownsPool)
        {
            MemoryPool.Dispose();
        }
    }

    private (PipeOptions Input, PipeOptions Output) PipeOptionsFor(PipeScheduler application) => (
        new PipeOptions(MemoryPool, application, PipeScheduler.ThreadPool, _maxRead, _maxRead / 2, useSynchronizationContext: false),
        new PipeOptions(MemoryPool, PipeScheduler.Inline, application, _maxWrite, _maxWrite / 2, useSynchronizationContext: false));
}
