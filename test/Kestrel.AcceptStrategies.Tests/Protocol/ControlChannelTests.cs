using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Tests.Protocol;

/// <summary>The supervisor–worker channel on a real SOCK_SEQPACKET socket pair: whole messages, or none.</summary>
public sealed class ControlChannelTests
{
    [Theory]
    [InlineData(128, 0L)]
    [InlineData(1024, 0L)]
    [InlineData(1024, 999_999_999L)]
    public async Task Heartbeat_WithACountPerAcceptor_ArrivesWholeAndParses(int acceptors, long count)
    {
        // A heartbeat carries one count per acceptor of every endpoint: 128 zeros were already longer than the old
        // 256-byte receive buffer, which cut them short, so the supervisor saw no heartbeat and killed the worker as hung.
        var (supervisor, worker) = ControlChannel.CreatePair();
        using (supervisor)
        using (worker)
        {
            var sent = ControlMessage.Heartbeat(1, 2, 3, 4, 5, Enumerable.Repeat(count, acceptors).ToArray());
            Assert.True(worker.TrySend(sent.ToString()));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var received = await supervisor.ReceiveAsync(timeout.Token);

            Assert.NotNull(received);
            Assert.True(ControlMessage.TryParse(received, out var parsed), $"did not parse: {received[..Math.Min(80, received.Length)]}…");
            Assert.True(parsed.SameCounts(sent));
        }
    }

    [Fact]
    public async Task Message_LongerThanTheLimit_IsRefusedNotCutShort()
    {
        var (supervisor, worker) = ControlChannel.CreatePair();
        using (supervisor)
        using (worker)
        {
            Assert.True(worker.TrySend("h 1 2 3 4 5 " + string.Join(',', Enumerable.Repeat("1", (ControlChannel.MaxMessageBytes / 2) + 10))));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var received = await supervisor.ReceiveAsync(timeout.Token);

            Assert.Equal(ControlChannel.TruncatedMessage, received);
            Assert.False(ControlMessage.TryParse(received!, out _));
        }
    }
}
