using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// Connection middleware that puts a pipe pair in front of the transport's which forwards every call unchanged, so
/// Kestrel talks to a replaced <see cref="ConnectionContext.Transport"/> (as behind TLS or a logging middleware) while
/// the bytes and their timing stay the transport's. The "PassThrough" rows of the tests use it.
/// </summary>
public static class ForwardingPipes
{
    public static TBuilder UseForwardingPipes<TBuilder>(this TBuilder builder) where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Use(next => context =>
        {
            var inner = context.Transport;
            context.Transport = new Pair(new Reader(inner.Input), new Writer(inner.Output));
            return next(context);
        });
        return builder;
    }

    private sealed record Pair(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private sealed class Reader(PipeReader inner) : PipeReader
    {
        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => inner.ReadAsync(cancellationToken);

        public override bool TryRead(out ReadResult result) => inner.TryRead(out result);

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    private sealed class Writer(PipeWriter inner) : PipeWriter
    {
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }
}
