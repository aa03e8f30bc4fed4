using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Supervisor;
using Microsoft.Extensions.Time.Testing;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>The supervisor loop's one timer, on a fake clock: earliest deadline wins, planned time reported.</summary>
public sealed class DeadlineTimerTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero));
    private readonly List<long> _fired = [];

    [Fact]
    public void LaterRequests_NeverPostpone_EarlierOnesBringItForward()
    {
        using var timer = new DeadlineTimer(_time, _fired.Add);
        var start = _time.GetTimestamp();
        timer.Request(At(start, 5));
        timer.Request(At(start, 10));
        timer.Request(At(start, 2));

        _time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.Empty(_fired);
        _time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.Equal([At(start, 2)], _fired);

        // Fired: nothing left planned until the loop asks again.
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.Single(_fired);
        Assert.Equal(long.MaxValue, timer.PlannedAt);
        timer.Request(At(_time.GetTimestamp(), 1));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, _fired.Count);
    }

    [Fact]
    public void DeadlineAlreadyPast_FiresAtOnce_PlannedNow()
    {
        using var timer = new DeadlineTimer(_time, _fired.Add);
        _time.Advance(TimeSpan.FromSeconds(10));
        var now = _time.GetTimestamp();
        timer.Request(now - _time.TimestampFrequency * 5);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal([now], _fired);
    }

    private long At(long start, double seconds) => start + _time.Units(seconds);
}
