using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Tests.Protocol;

/// <summary>The control protocol's text: <c>ready</c> carries the worker's start-up figures, compatibly.</summary>
public sealed class ControlMessageTests
{
    [Fact]
    public void Ready_WithStartup_RoundTrips()
    {
        var sent = ControlMessage.ReadyAfter(TimeSpan.FromMilliseconds(412), TimeSpan.FromMilliseconds(388));

        Assert.Equal("ready 412 388", sent.ToString());
        Assert.True(ControlMessage.TryParse(sent.ToString(), out var received));
        Assert.Equal(ControlMessageKind.Ready, received.Kind);
        Assert.Equal(TimeSpan.FromMilliseconds(412), received.StartupWall);
        Assert.Equal(TimeSpan.FromMilliseconds(388), received.StartupCpu);
    }

    [Fact]
    public void Ready_Bare_ReadyWithoutFigures()
    {
        Assert.True(ControlMessage.TryParse("ready", out var received));

        Assert.Equal(ControlMessageKind.Ready, received.Kind);
        Assert.Null(received.StartupWall);
        Assert.Null(received.StartupCpu);
    }

    [Theory]
    [InlineData("ready x 5")]
    [InlineData("ready 5")]
    [InlineData("ready -5 5")]
    [InlineData("ready 5 -5")]
    [InlineData("ready 1e3 5")]
    [InlineData("ready 99999999999999999999 5")]
    [InlineData("ready 5 999999999999")]
    public void Ready_GarbledFigures_ReadyWithoutThem(string text)
    {
        Assert.True(ControlMessage.TryParse(text, out var received));

        Assert.Equal(ControlMessageKind.Ready, received.Kind);
        Assert.Null(received.StartupWall);
        Assert.Null(received.StartupCpu);
    }

    [Fact]
    public void Ready_MoreFieldsThanKnown_KeepsTheKnownOnes()
    {
        // A later version may add fields after these two.
        Assert.True(ControlMessage.TryParse("ready 300 250 future", out var received));

        Assert.Equal(TimeSpan.FromMilliseconds(300), received.StartupWall);
        Assert.Equal(TimeSpan.FromMilliseconds(250), received.StartupCpu);
    }

    [Theory]
    [InlineData("h 3 2", nameof(ControlMessageKind.Heartbeat))]
    [InlineData("h 3 2 1 1 250 1,1", nameof(ControlMessageKind.Heartbeat))]
    [InlineData("h 0 0 0 0 0 -", nameof(ControlMessageKind.Heartbeat))]
    [InlineData("budget 7", nameof(ControlMessageKind.BudgetSpent))]
    [InlineData("accept", nameof(ControlMessageKind.Accept))]
    public void OtherMessages_Unchanged(string text, string kind)
    {
        Assert.True(ControlMessage.TryParse(text, out var received));

        Assert.Equal(kind, received.Kind.ToString());
        Assert.Equal(text, received.ToString());
    }

    [Theory]
    [InlineData("readyx")]
    [InlineData("")]
    [InlineData("h 3")]
    [InlineData("h 3 2 1 1 250")]
    [InlineData("h 3 2 1 1 250 1,x")]
    [InlineData("h 3 2 1 1 250 1,,2")]
    [InlineData("h 3 2 1 -1 250 1")]
    [InlineData("h 3 2 1 1 250 1 9")]
    public void Unknown_NotParsed(string text) => Assert.False(ControlMessage.TryParse(text, out _));

    [Fact]
    public void FullHeartbeat_RoundTrips()
    {
        var sent = ControlMessage.Heartbeat(10, 4, 2, 3, 1_500, [1, 3]);

        Assert.True(ControlMessage.TryParse(sent.ToString(), out var received));

        Assert.Equal((10, 4, 2, 3, 1_500), (received.Requests, received.Connections, received.OpenConnections, received.InFlight, received.BusyMilliseconds));
        Assert.Equal([1L, 3L], received.Accepted!);
        Assert.True(received.SameCounts(sent));
        Assert.False(received.SameCounts(ControlMessage.Heartbeat(10, 4, 2, 3, 1_500, [2, 2])));
    }
}
