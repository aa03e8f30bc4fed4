// Test cases of aspnetcore's src/Servers/Kestrel/test/FunctionalTests/ConnectionMiddlewareTests.cs, same names,
// written for this harness; each runs on all four transports.
// Differs from upstream's cases:
// - The middleware is put on the harness's one endpoint (ServerSetup.Endpoint) instead of a ListenOptions the test
//   constructs (its constructor is internal to Kestrel).
// - The throwing middleware throws an InvalidOperationException (Kestrel handles any exception alike).
// Dropped: none.
// Added (not upstream): ThrowingConnectionClosedCallbackDoesNotCrashServer, what SocketConnection's
// CancelConnectionClosedToken and its DisposeAsync do, held against every transport.

using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

public abstract class ConnectionMiddlewareTests : TransportTestBase
{
    [Fact]
    public async Task ThrowingSynchronousConnectionMiddlewareDoesNotCrashServer()
    {
        // The middleware throws before returning a task; Kestrel must close that connection (the request never reaches
        // the app), so a client that keeps sending its announced body soon gets a write error.
        await using var server = await StartServerAsync(
            _ => Task.CompletedTask,
            new ServerSetup { Endpoint = listen => listen.Use(_ => _ => throw new InvalidOperationException("Connection middleware failed synchronously.")) });

        using var client = await server.ConnectAsync();
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            await client.SendAsync("POST / HTTP/1.0", "Content-Length: 1000", "", "");
            for (var i = 0; i < 1000; i++)
            {
                await client.SendAsync("a");
                await Task.Delay(5);
            }
        });
    }

    [Fact]
    public async Task DisposeAsyncAfterReplacingTransportClosesConnection()
    {
        // The middleware swaps the transport's pipes for its own and then disposes the connection: the transport's
        // connection must still close, and Kestrel must not complete the pipes that replaced it.
        var replacement = new UnusablePipe();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var server = await StartServerAsync(
            _ => Task.CompletedTask,
            new ServerSetup
            {
                Endpoint = listen => listen.Use(_ => async context =>
                {
                    context.Transport = replacement;
                    await context.DisposeAsync();
                    await release.Task.OrTimeout();
                }),
            }))
        {
            using var client = await server.ConnectAsync();
            await client.ExpectClosedAsync();
            release.TrySetResult();
        }

        Assert.False(replacement.Completed, "Kestrel completed the pipes the middleware put in place of the transport's.");
    }

    [Fact]
    public async Task ThrowingConnectionClosedCallbackDoesNotCrashServer()
    {
        // A callback on ConnectionClosed that throws is logged as an error, not the end of the process, and the
        // connection's disposal returns only once its callbacks have run (Kestrel's transport waits for them).
        var callbacksRunWhenDisposed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartServerAsync(
            context =>
            {
                // A length, not chunks: the response ends with its last byte, so the close is all that follows.
                context.Response.ContentLength = 5;
                return context.Response.WriteAsync("hello");
            },
            new ServerSetup
            {
                Endpoint = listen => listen.Use(next => async context =>
                {
                    var slowCallbackRan = 0;
                    context.ConnectionClosed.Register(() => throw new InvalidOperationException("ConnectionClosed callback failed."));
                    context.ConnectionClosed.Register(() =>
                    {
                        Thread.Sleep(200);
                        Volatile.Write(ref slowCallbackRan, 1);
                    });
                    try
                    {
                        await next(context);
                    }
                    finally
                    {
                        await context.DisposeAsync();
                        callbacksRunWhenDisposed.TrySetResult(Volatile.Read(ref slowCallbackRan) == 1);
                    }
                }),
            });

        using (var client = await server.ConnectAsync())
        {
            await client.SendAsync("GET / HTTP/1.1", "Host: x", "Connection: close", "", "");
            Assert.Contains("hello", await client.ReadUntilAsync("hello"), StringComparison.Ordinal);
            await client.ExpectClosedAsync();
        }

        Assert.True(await callbacksRunWhenDisposed.Task.OrTimeout(), "DisposeAsync returned before ConnectionClosed's callbacks had run.");
        var logged = await LoggedAsync(e => e.Level == LogLevel.Error && e.Exception?.ToString().Contains("ConnectionClosed callback failed.", StringComparison.Ordinal) == true);
        Assert.NotNull(logged);

        // The server still serves.
        using var next = await server.ConnectAsync();
        await next.SendAsync("GET / HTTP/1.1", "Host: x", "Connection: close", "", "");
        Assert.Contains("hello", await next.ReadUntilAsync("hello"), StringComparison.Ordinal);
    }

    /// <summary>Pipes that refuse every operation and only record whether either side was completed.</summary>
    private sealed class UnusablePipe : IDuplexPipe
    {
        private int _completed;

        public bool Completed => Volatile.Read(ref _completed) != 0;

        public PipeReader Input => new Reader(this);

        public PipeWriter Output => new Writer(this);

        private void MarkCompleted() => Volatile.Write(ref _completed, 1);

        private sealed class Reader(UnusablePipe owner) : PipeReader
        {
            public override void Complete(Exception? exception = null) => owner.MarkCompleted();

            public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

            public override bool TryRead(out ReadResult result) => throw new NotSupportedException();

            public override void AdvanceTo(SequencePosition consumed) => throw new NotSupportedException();

            public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => throw new NotSupportedException();

            public override void CancelPendingRead() => throw new NotSupportedException();
        }

        private sealed class Writer(UnusablePipe owner) : PipeWriter
        {
            public override void Complete(Exception? exception = null) => owner.MarkCompleted();

            public override Memory<byte> GetMemory(int sizeHint = 0) => throw new NotSupportedException();

            public override Span<byte> GetSpan(int sizeHint = 0) => throw new NotSupportedException();

            public override void Advance(int bytes) => throw new NotSupportedException();

            public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

            public override void CancelPendingFlush() => throw new NotSupportedException();
        }
    }
}

public sealed class ConnectionMiddlewareTestsOnSockets : ConnectionMiddlewareTests
{
    protected override TestTransport Transport => TestTransport.Sockets;
}

public sealed class ConnectionMiddlewareTestsOnReusePort : ConnectionMiddlewareTests
{
    protected override TestTransport Transport => TestTransport.ReusePort;
}

public sealed class ConnectionMiddlewareTestsOnThunderingHerd : ConnectionMiddlewareTests
{
    protected override TestTransport Transport => TestTransport.ThunderingHerd;
}

public sealed class ConnectionMiddlewareTestsOnSerialized : ConnectionMiddlewareTests
{
    protected override TestTransport Transport => TestTransport.Serialized;
}

public sealed class ConnectionMiddlewareTestsOnSocketsInline : ConnectionMiddlewareTests
{
    protected override TestTransport Transport => TestTransport.SocketsInline;
}

public sealed class ConnectionMiddlewareTestsOnReusePortInline : ConnectionMiddlewareTests
{
    protected override TestTransport Transport => TestTransport.ReusePortInline;
}
