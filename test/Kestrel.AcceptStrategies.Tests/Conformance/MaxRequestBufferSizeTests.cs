// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/MaxRequestBufferSizeTests.cs, same names and
// rows (LargeUpload: 8 buffer sizes × with/without connection middleware), written for this harness; each runs on all
// four transports.
// Differs from upstream's cases:
// - The upload is 40 MB instead of 100 MB, for CI time (17 uploads per transport). It must stay above the most a
//   paused client can get written (the 5 MB row's limit plus the kernel's socket buffers, which grow to 32 MB here);
//   the pause rows check it (the client stalls before the last byte).
// - The transport's read buffer limit follows Limits.MaxRequestBufferSize on every transport (ServerSetup), as
//   upstream gives it the same value; upstream's check that every memory-pool block was returned is not here (the
//   pool factory is internal to Kestrel's socket transport).
// - "The client has stalled" is a bounded wait: it fails after Deadline.Default instead of polling forever.
// - ServerShutsDownGracefullyWhenMaxRequestBufferSizeExceeded stops the host with a 1 s grace: upstream's stop waits
//   out the host's whole shutdown timeout for the request the app holds, then aborts it; the shorter grace takes the
//   same abort path sooner.
// Dropped: none.

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class MaxRequestBufferSizeTests : TransportTestBase
{
    private const int UploadSize = 40 * 1024 * 1024;

    /// <summary>The client writes the body in pieces of this size; the stall bounds below depend on it.</summary>
    private const int PieceSize = 4096;

    private static readonly string HeaderLines = string.Create(CultureInfo.InvariantCulture, $"Host: \r\nContent-Length: {UploadSize}\r\n");

    private static readonly byte[] RequestHead = Encoding.ASCII.GetBytes("POST / HTTP/1.1\r\n" + HeaderLines + "\r\n");

    /// <summary>(MaxRequestBufferSize, through connection middleware, whether the client must be paused).</summary>
    public static TheoryData<long?, bool, bool> UploadRows
    {
        get
        {
            (long? Limit, bool Pauses)[] limits =
            [
                // Just room for the header lines: any smaller and Kestrel could not finish parsing them.
                (HeaderLines.Length, true),
                (16 * 1024, true),

                // Kestrel's default.
                (1024 * 1024, true),

                // Above the default, still far below the upload.
                (5 * 1024 * 1024, true),

                // Short of the upload by one byte: the kernel's buffers take the rest, the client never waits.
                (UploadSize - 1, false),

                // Exactly the upload (once, a resume raced with the socket's close here).
                (UploadSize, false),
                (long.MaxValue, false),

                // No limit at all: the input is never measured.
                (null, false),
            ];

            var rows = new TheoryData<long?, bool, bool>();
            foreach (var (limit, pauses) in limits)
            {
                rows.Add(limit, true, pauses);
                rows.Add(limit, false, pauses);
            }

            return rows;
        }
    }

    [Theory]
    [MemberData(nameof(UploadRows))]
    public async Task LargeUpload(long? maxRequestBufferSize, bool connectionAdapter, bool expectPause)
    {
        var gate = new UploadGate();
        await using var server = await StartServerAsync(gate.App, Setup(maxRequestBufferSize, connectionAdapter));
        using var client = await server.ConnectAsync();
        await client.Stream.WriteAsync(RequestHead).OrTimeout();

        var upload = Upload.Start(client.Stream, UploadSize, gate.ClientDone);
        if (expectPause)
        {
            // Kestrel stops reading once its buffer is full, so the client must stall somewhere between filling that
            // buffer (it cannot stall while one more piece still fits) and finishing the upload.
            var stalledAt = await upload.StalledAsync();
            Assert.InRange(stalledAt, maxRequestBufferSize!.Value - PieceSize + 1, UploadSize - 1);
            gate.StartReading();
            await upload.Completion.OrTimeout();
        }
        else
        {
            // The whole upload fits before the app reads a byte.
            await upload.Completion.OrTimeout();
            gate.StartReading();
        }

        var response = await client.ReadUntilAsync($"bytesRead: {UploadSize}", UploadGate.Failure);
        Assert.Contains($"bytesRead: {UploadSize}", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerShutsDownGracefullyWhenMaxRequestBufferSizeExceeded()
    {
        const int limit = 16 * 1024;
        var gate = new UploadGate();
        await using (var server = await StartServerAsync(gate.App, Setup(limit, connectionAdapter: false)))
        {
            var client = await server.ConnectAsync();
            await client.Stream.WriteAsync(RequestHead).OrTimeout();
            var upload = Upload.Start(client.Stream, UploadSize, gate.ClientDone);
            Assert.InRange(await upload.StalledAsync(), limit - PieceSize + 1, UploadSize - 1);

            // Stop while the connection is paused (its reads switched off) and the app still waits: Kestrel must abort
            // that connection cleanly. The client connection stays open until after the host is gone.
            await server.StopAsync(grace: TimeSpan.FromSeconds(1));
        }

        gate.StartReading();
        gate.ClientDone.TrySetResult();
    }

    private static ServerSetup Setup(long? maxRequestBufferSize, bool connectionAdapter) => new()
    {
        Endpoint = connectionAdapter ? listen => listen.UseForwardingPipes() : null,
        Limits = limits =>
        {
            limits.MaxRequestBufferSize = maxRequestBufferSize;

            // The request line and headers must fit in the buffer, or Kestrel would wait for more forever.
            if (maxRequestBufferSize < limits.MaxRequestLineSize)
            {
                limits.MaxRequestLineSize = (int)maxRequestBufferSize.Value;
            }

            if (maxRequestBufferSize < limits.MaxRequestHeadersTotalSize)
            {
                limits.MaxRequestHeadersTotalSize = (int)maxRequestBufferSize.Value;
            }

            limits.MinRequestBodyDataRate = null;
            limits.MaxRequestBodySize = UploadSize;
        },
    };

    /// <summary>
    /// The app's side: it does not read the body until <see cref="StartReading"/>, reads all of it, waits for the
    /// client to have finished writing, and answers <c>bytesRead: N</c>, or <see cref="Failure"/> if more came.
    /// </summary>
    private sealed class UploadGate
    {
        public const string Failure = "more than Content-Length";

        private readonly TaskCompletionSource _startReading = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ClientDone { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void StartReading() => _startReading.TrySetResult();

        public async Task App(HttpContext context)
        {
            await _startReading.Task.OrTimeout();
            var piece = new byte[64 * 1024];
            long read = 0;
            int count;
            while (read < UploadSize && (count = await context.Request.Body.ReadAsync(piece)) > 0)
            {
                read += count;
            }

            await ClientDone.Task.OrTimeout();
            if (await context.Request.Body.ReadAsync(piece) > 0)
            {
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                await context.Response.WriteAsync(Failure);
                return;
            }

            await context.Response.WriteAsync($"bytesRead: {read}");
        }
    }

    /// <summary>The client's upload of zeros in <see cref="PieceSize"/> writes, with its progress.</summary>
    private sealed class Upload
    {
        private static readonly TimeSpan StallTime = TimeSpan.FromMilliseconds(100);

        private long _written;
        private long _lastWriteTimestamp;

        public Task Completion { get; private set; } = Task.CompletedTask;

        public static Upload Start(Stream stream, int size, TaskCompletionSource done)
        {
            var upload = new Upload();
            upload.Completion = Task.Run(async () =>
            {
                var piece = new byte[PieceSize];
                while (upload._written < size)
                {
                    var length = (int)Math.Min(PieceSize, size - upload._written);
                    await stream.WriteAsync(piece.AsMemory(0, length));
                    Interlocked.Add(ref upload._written, length);
                    Volatile.Write(ref upload._lastWriteTimestamp, Stopwatch.GetTimestamp());
                }

                done.TrySetResult();
            });
            return upload;
        }

        /// <summary>
        /// Waits until at least one write has completed and none has for <see cref="StallTime"/> (the server stopped
        /// reading, and the kernel's buffers are full), and returns how much was written by then. A stall is the
        /// absence of progress, so this polls; it fails after <see cref="Deadline.Default"/>.
        /// </summary>
        public async Task<long> StalledAsync()
        {
            var waited = Stopwatch.StartNew();
            while (true)
            {
                var last = Volatile.Read(ref _lastWriteTimestamp);
                if (last != 0 && Stopwatch.GetElapsedTime(last) >= StallTime)
                {
                    return Interlocked.Read(ref _written);
                }

                if (waited.Elapsed > Deadline.Default)
                {
                    throw new TimeoutException($"The client did not stall within {Deadline.Default}: {Interlocked.Read(ref _written)} bytes written.");
                }

                await Task.Delay(StallTime / 10);
            }
        }
    }
}

public sealed class MaxRequestBufferSizeTestsOnSockets : MaxRequestBufferSizeTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class MaxRequestBufferSizeTestsOnReusePort : MaxRequestBufferSizeTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class MaxRequestBufferSizeTestsOnThunderingHerd : MaxRequestBufferSizeTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class MaxRequestBufferSizeTestsOnSerialized : MaxRequestBufferSizeTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class MaxRequestBufferSizeTestsOnSocketsInline : MaxRequestBufferSizeTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class MaxRequestBufferSizeTestsOnReusePortInline : MaxRequestBufferSizeTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
