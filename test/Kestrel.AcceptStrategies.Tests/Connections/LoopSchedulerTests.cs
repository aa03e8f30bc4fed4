using Kestrel.AcceptStrategies.Connections;
using Microsoft.Extensions.Time.Testing;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>An event loop's scheduler under UnsafePreferInlineScheduling, on a fake clock: inline until one resumption holds the loop for the threshold.</summary>
public sealed class LoopSchedulerTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
    private readonly List<TimeSpan> _blocked = [];

    [Fact]
    public void ResumptionsShorterThanTheThreshold_RunInlineOnTheLoop()
    {
        var scheduler = OnThisThread();
        for (var i = 0; i < 3; i++)
        {
            var ranOn = -1;
            scheduler.Schedule(_ => { ranOn = Environment.CurrentManagedThreadId; _time.Advance(LoopScheduler.BlockThreshold - TimeSpan.FromMilliseconds(1)); }, null);
            Assert.Equal(Environment.CurrentManagedThreadId, ranOn);
        }

        Assert.True(scheduler.IsInline);
        Assert.Empty(_blocked);
    }

    [Fact]
    public async Task AResumptionHoldingTheLoopForTheThreshold_IsReportedOnce_LaterOnesGoToTheThreadPool()
    {
        // The loop is a dedicated thread, as an event loop's is: a resumption run inline would report no pool thread.
        var later = new List<Task<bool>>();
        var scheduler = new LoopScheduler(_time, _blocked.Add);
        var loop = new Thread(() =>
        {
            scheduler.BindToCurrentThread();
            scheduler.Schedule(_ => _time.Advance(LoopScheduler.BlockThreshold + TimeSpan.FromMilliseconds(50)), null);
            for (var i = 0; i < 3; i++)
            {
                var ran = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                scheduler.Schedule(
                    _ =>
                    {
                        _time.Advance(TimeSpan.FromSeconds(1));
                        ran.TrySetResult(Thread.CurrentThread.IsThreadPoolThread);
                    },
                    null);
                later.Add(ran.Task);
            }
        });
        loop.Start();
        Assert.True(loop.Join(TimeSpan.FromSeconds(10)), "the loop's thread did not finish scheduling");

        Assert.False(scheduler.IsInline);
        foreach (var ranOnThePool in later)
        {
            Assert.True(await ranOnThePool.WaitAsync(TimeSpan.FromSeconds(10)), "a resumption after the fall-back ran off the thread pool");
        }

        Assert.Equal([LoopScheduler.BlockThreshold + TimeSpan.FromMilliseconds(50)], _blocked);
    }

    [Fact]
    public void OffTheLoopsThread_ResumptionsRunInline_Untimed()
    {
        // Bound to no thread: every resumption is off the loop (a read resumed on the thread pool after back-pressure).
        var scheduler = new LoopScheduler(_time, _blocked.Add);
        var ranOn = -1;
        scheduler.Schedule(_ => { ranOn = Environment.CurrentManagedThreadId; _time.Advance(TimeSpan.FromSeconds(5)); }, null);

        Assert.Equal(Environment.CurrentManagedThreadId, ranOn);
        Assert.True(scheduler.IsInline);
        Assert.Empty(_blocked);
    }

    [Fact]
    public void AResumptionThatThrows_IsStillTimed()
    {
        var scheduler = OnThisThread();
        Assert.Throws<InvalidOperationException>(() => scheduler.Schedule(
            _ =>
            {
                _time.Advance(LoopScheduler.BlockThreshold);
                throw new InvalidOperationException("the application failed");
            },
            null));

        Assert.False(scheduler.IsInline);
        Assert.Equal([LoopScheduler.BlockThreshold], _blocked);
    }

    private LoopScheduler OnThisThread()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add);
        scheduler.BindToCurrentThread();
        return scheduler;
    }
}
