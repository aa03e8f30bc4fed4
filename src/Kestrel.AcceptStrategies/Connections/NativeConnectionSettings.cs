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

    /// <summary>Kestrel's pinned-block pool from <paramref name="memoryPoolFactory"/> when the host has one (it does under Kestrel).</summary>
    public NativeConnectionSettings(IMemoryPoolFactory<byte>? memoryPoolFactory, SocketTransportOptions options, ILogger logger)
    {
        var memoryPool = memoryPoolFactory?.Create(new MemoryPoolOptions { Owner = "accept_strategies" });
        _ownsPool = memoryPool is not null;
        MemoryPool = memoryPool ?? MemoryPool<byte>.Shared;
        Logger = logger;
        FinOnError = SocketTransportInternals.FinOnError(options);

        // The application's side resumes on the thread pool unless the user opted into inline scheduling; the
        // transport's side (our reads of the output pipe) always resumes inline, on the thread that flushed.
        var application = options.UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        var maxRead = options.MaxReadBufferSize ?? 0;
        var maxWrite = options.MaxWriteBufferSize ?? 0;
        InputOptions = new PipeOptions(MemoryPool, application, PipeScheduler.ThreadPool, maxRead, maxRead / 2, useSynchronizationContext: false);
        OutputOptions = new PipeOptions(MemoryPool, PipeScheduler.Inline, application, maxWrite, maxWrite / 2, useSynchronizationContext: false);
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

    /// <summary>Once the listener's connections are gone.</summary>
    public void Dispose()
    {
        if (_ownsPool)
        {
            MemoryPool.Dispose();
        }
    }
}
