using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Kestrel.AcceptStrategies.Connections;

/// <summary>
/// What every connection of a listener shares: the memory pool and the pipe options, set as Kestrel's socket transport
/// sets them from <see cref="SocketTransportOptions"/>.
/// </summary>
internal sealed class NativeConnectionSettings
{
    public NativeConnectionSettings(MemoryPool<byte> memoryPool, SocketTransportOptions options)
    {
        MemoryPool = memoryPool;

        // The application's side resumes on the thread pool unless the user opted into inline scheduling; the
        // transport's side (our reads of the output pipe) always resumes inline, on the thread that flushed.
        var application = options.UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        var maxRead = options.MaxReadBufferSize ?? 0;
        var maxWrite = options.MaxWriteBufferSize ?? 0;
        InputOptions = new PipeOptions(memoryPool, application, PipeScheduler.ThreadPool, maxRead, maxRead / 2, useSynchronizationContext: false);
        OutputOptions = new PipeOptions(memoryPool, PipeScheduler.Inline, application, maxWrite, maxWrite / 2, useSynchronizationContext: false);
    }

    public MemoryPool<byte> MemoryPool { get; }

    public PipeOptions InputOptions { get; }

    public PipeOptions OutputOptions { get; }

    /// <summary>The smallest buffer a read asks the pipe for: one of Kestrel's 4 KB pool blocks.</summary>
    public const int MinimumReadSize = 4096;
}
