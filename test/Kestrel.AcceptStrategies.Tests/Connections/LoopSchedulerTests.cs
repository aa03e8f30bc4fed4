using Kestrel.AcceptStrategies.Connections;
using Microsoft.Extensions.Time.Testing;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// An event loop's scheduler under UnsafePreferInlineScheduling, on a fake clock and a dedicated thread as the loop's:
/// resumptions scheduled there run when the loop asks, timed, until one holds it for the threshold (reported when it
/// returns, or taken over when the watch finds it still running); anything scheduled elsewhere, and everything after
/// the fall-back, runs on the thread pool.
/// </summary>
public sealed class LoopSchedulerTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
    private readonly List<TimeSpan> _blocked = [];
    private readonly List<TimeSpan> _takenOver = [];
    private bool _threadStarts = true;

    [Fact]
    public void OnTheLoop_ResumptionsWaitForRunReady_AndRunThereInOrder()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var ran = new List<(int Order, int Thread)>();
        var loopThread = -1;
        var ranBeforeRunReady = -1;
        OnLoop(scheduler, () =>
        {
            loopThread = Environment.CurrentManagedThreadId;
            for (var i = 0; i < 3; i++)
            {
                var order = i;
                scheduler.Schedule(_ => { ran.Add((order, Environment.CurrentManagedThreadId)); _time.Advance(LoopScheduler.BlockThreshold - TimeSpan.FromMilliseconds(1)); }, null);
            }

            ranBeforeRunReady = ran.Count;
            scheduler.RunReady();
        });

        Assert.Equal(0, ranBeforeRunReady);
        Assert.Equal([(0, loopThread), (1, loopThread), (2, loopThread)], ran);
        Assert.True(scheduler.IsInline);
        Assert.Empty(_blocked);
    }

    [Fact]
    public void AResumptionScheduledByAnother_RunsInTheSameRunReady()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var ran = new List<string>();
        OnLoop(scheduler, () =>
        {
            scheduler.Schedule(_ => { ran.Add("outer"); scheduler.Schedule(_ => ran.Add("inner"), null); }, null);
            scheduler.RunReady();
        });

        Assert.Equal(["outer", "inner"], ran);
    }

    [Fact]
    public async Task AResumptionHoldingTheLoopForTheThreshold_IsReportedOnce_TheRestGoToTheThreadPool()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var queuedBehind = Ran();
        var scheduledAfter = Ran();
        OnLoop(scheduler, () =>
        {
            scheduler.Schedule(_ => _time.Advance(LoopScheduler.BlockThreshold + TimeSpan.FromMilliseconds(50)), null);
            scheduler.Schedule(queuedBehind.Run, null);
            scheduler.RunReady();

            scheduler.Schedule(scheduledAfter.Run, null);
            scheduler.RunReady();
        });

        Assert.False(scheduler.IsInline);
        Assert.True(await queuedBehind.OnThePool.Task.WaitAsync(s_timeout), "a resumption queued behind the hold ran off the thread pool");
        Assert.True(await scheduledAfter.OnThePool.Task.WaitAsync(s_timeout), "a resumption scheduled after the fall-back ran off the thread pool");
        Assert.Equal([LoopScheduler.BlockThreshold + TimeSpan.FromMilliseconds(50)], _blocked);
    }

    [Fact]
    public async Task ScheduledOffTheLoopsThread_RunsOnTheThreadPool_Untimed()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        OnLoop(scheduler, () => { });

        // Another dedicated thread: not the loop's, not the pool's.
        var elsewhere = Ran(advance: TimeSpan.FromSeconds(5));
        var other = new Thread(() => scheduler.Schedule(elsewhere.Run, null));
        other.Start();
        Assert.True(other.Join(s_timeout));

        Assert.True(await elsewhere.OnThePool.Task.WaitAsync(s_timeout), "a resumption scheduled off the loop ran off the thread pool");
        Assert.True(scheduler.IsInline);
        Assert.Empty(_blocked);
    }

    [Fact]
    public async Task AResumptionThatThrows_IsTimed_AndLeavesTheRestForTheNextRunReady()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var next = Ran();
        Exception? thrown = null;
        var ranWithTheFailure = true;
        OnLoop(scheduler, () =>
        {
            scheduler.Schedule(_ => { _time.Advance(LoopScheduler.BlockThreshold); throw new InvalidOperationException("the application failed"); }, null);
            scheduler.Schedule(next.Run, null);
            thrown = Record.Exception(() => { scheduler.RunReady(); });
            ranWithTheFailure = next.OnThePool.Task.IsCompleted;

            // The failed one held the loop for the threshold: the one left behind goes to the pool, none is lost.
            scheduler.RunReady();
        });

        Assert.IsType<InvalidOperationException>(thrown);
        Assert.False(ranWithTheFailure, "the resumption behind the one that threw ran in the same RunReady");
        Assert.False(scheduler.IsInline);
        Assert.Equal([LoopScheduler.BlockThreshold], _blocked);
        Assert.True(await next.OnThePool.Task.WaitAsync(s_timeout));
    }

    [Fact]
    public async Task AResumptionTheWatchFindsPastTheThreshold_IsTakenOver_AndItsThreadLeavesTheLoop()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var queuedBehind = Ran();
        var toldWhileRunning = -1;
        bool? stillTheLoop = null;
        var leftByTheLoopsThread = false;
        OnLoop(scheduler, () =>
        {
            scheduler.StartWatch();
            scheduler.Schedule(
                _ =>
                {
                    // The watch's first tick, on this clock, while this resumption runs.
                    _time.Advance(LoopScheduler.BlockThreshold);
                    toldWhileRunning = _takenOver.Count;
                },
                null);
            scheduler.Schedule(queuedBehind.Run, null);
            stillTheLoop = scheduler.RunReady();
            leftByTheLoopsThread = scheduler.LeftByCurrentThread;
        });

        Assert.Equal(1, toldWhileRunning);
        Assert.Equal([LoopScheduler.BlockThreshold], _takenOver);
        Assert.False(stillTheLoop);
        Assert.True(leftByTheLoopsThread, "the held thread does not know it left the loop");
        Assert.False(scheduler.IsInline);
        Assert.Empty(_blocked);
        Assert.True(await queuedBehind.OnThePool.Task.WaitAsync(s_timeout), "a resumption queued behind the taken-over one ran off the thread pool");

        // The watch has stopped: later ticks tell nothing more.
        _time.Advance(LoopScheduler.BlockThreshold * 5);
        Assert.Single(_takenOver);
    }

    [Fact]
    public async Task WhenNoThreadCanTakeOver_TheHeldThreadStaysTheLoops_AndApplicationCodeGoesToThePool()
    {
        _threadStarts = false;
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var queuedBehind = Ran();
        var scheduledAfter = Ran();
        bool? stillTheLoop = null;
        var left = true;
        OnLoop(scheduler, () =>
        {
            scheduler.StartWatch();
            scheduler.Schedule(_ => _time.Advance(LoopScheduler.BlockThreshold), null);
            scheduler.Schedule(queuedBehind.Run, null);
            stillTheLoop = scheduler.RunReady();
            left = scheduler.LeftByCurrentThread;

            scheduler.Schedule(scheduledAfter.Run, null);
            stillTheLoop &= scheduler.RunReady();
        });

        Assert.True(stillTheLoop);
        Assert.False(left);
        Assert.False(scheduler.IsInline);
        Assert.Single(_takenOver);
        Assert.Empty(_blocked);
        Assert.True(await queuedBehind.OnThePool.Task.WaitAsync(s_timeout));
        Assert.True(await scheduledAfter.OnThePool.Task.WaitAsync(s_timeout));
    }

    [Fact]
    public void AnIdleLoopsWatch_Parks_AndTheNextResumptionStartsItAgain_InTimeToTakeItOver()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var parkedWhenIdle = false;
        var parkedWhileHeld = true;
        bool? stillTheLoop = null;
        OnLoop(scheduler, () =>
        {
            scheduler.StartWatch();
            for (var tick = 1; tick < LoopScheduler.QuietTicksBeforeParking; tick++)
            {
                _time.Advance(LoopScheduler.BlockThreshold);
            }

            Assert.False(scheduler.IsWatchParked, "parked before its quiet ticks were up");
            _time.Advance(LoopScheduler.BlockThreshold);
            parkedWhenIdle = scheduler.IsWatchParked;

            scheduler.Schedule(
                _ =>
                {
                    parkedWhileHeld = scheduler.IsWatchParked;
                    _time.Advance(LoopScheduler.BlockThreshold);
                },
                null);
            stillTheLoop = scheduler.RunReady();
        });

        Assert.True(parkedWhenIdle, "an idle loop's watch did not park");
        Assert.False(parkedWhileHeld, "a resumption ran with the watch parked");
        Assert.Single(_takenOver);
        Assert.False(stillTheLoop);
    }

    [Fact]
    public void AResumptionThatStartsWhileTheWatchParks_StartsItAgain()
    {
        var time = new HookedTime(_time);
        var scheduler = new LoopScheduler(time, _blocked.Add, TakeOver);
        var ranInTheWindow = false;
        var parkedAfter = true;
        OnLoop(scheduler, () =>
        {
            // Between stopping its timer and marking itself parked, the watch is overtaken by a resumption that starts
            // and ends (on this thread: the fake clock runs the watch here).
            time.Stopping = () =>
            {
                time.Stopping = null;
                scheduler.Schedule(_ => ranInTheWindow = true, null);
                _ = scheduler.RunReady();
            };
            scheduler.StartWatch();
            for (var tick = 0; tick < LoopScheduler.QuietTicksBeforeParking; tick++)
            {
                _time.Advance(LoopScheduler.BlockThreshold);
            }

            parkedAfter = scheduler.IsWatchParked;
        });

        Assert.True(ranInTheWindow, "the watch never parked");
        Assert.False(parkedAfter, "the watch stayed parked though a resumption started while it parked");
    }

    [Fact]
    public void AWatchDisposedWhileItParks_EndsQuietly()
    {
        var time = new HookedTime(_time);
        var scheduler = new LoopScheduler(time, _blocked.Add, TakeOver);
        Exception? thrown = null;
        OnLoop(scheduler, () =>
        {
            // The loop ends just before the last quiet tick stops the timer, which a disposed system timer refuses.
            time.Stopping = () =>
            {
                scheduler.Abandon();
                throw new ObjectDisposedException("timer");
            };
            scheduler.StartWatch();
            thrown = Record.Exception(() =>
            {
                for (var tick = 0; tick < LoopScheduler.QuietTicksBeforeParking; tick++)
                {
                    _time.Advance(LoopScheduler.BlockThreshold);
                }
            });
        });

        Assert.Null(thrown);
        Assert.False(scheduler.IsWatchParked);
    }

    [Fact]
    public void ABusyLoopsWatch_NeverParks()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var parked = new List<bool>();
        OnLoop(scheduler, () =>
        {
            scheduler.StartWatch();
            for (var tick = 0; tick < LoopScheduler.QuietTicksBeforeParking * 3; tick++)
            {
                // One short resumption between two ticks, every time.
                scheduler.Schedule(_ => _time.Advance(TimeSpan.FromMilliseconds(1)), null);
                _ = scheduler.RunReady();
                _time.Advance(LoopScheduler.BlockThreshold);
                parked.Add(scheduler.IsWatchParked);
            }
        });

        Assert.DoesNotContain(true, parked);
        Assert.Empty(_takenOver);
        Assert.Empty(_blocked);
        scheduler.Dispose();
    }

    [Fact]
    public void ResumptionsThatReturnInTime_AreNeverTakenOver()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var stillTheLoop = new List<bool>();
        OnLoop(scheduler, () =>
        {
            scheduler.StartWatch();
            for (var i = 0; i < 5; i++)
            {
                // Each just under the threshold, and the watch ticks in each; between them, ticks find nothing running.
                scheduler.Schedule(_ => _time.Advance(LoopScheduler.BlockThreshold - TimeSpan.FromMilliseconds(1)), null);
                stillTheLoop.Add(scheduler.RunReady());
                _time.Advance(LoopScheduler.BlockThreshold * 2);
            }
        });

        Assert.Equal([true, true, true, true, true], stillTheLoop);
        Assert.True(scheduler.IsInline);
        Assert.Empty(_takenOver);
        Assert.Empty(_blocked);
        scheduler.Dispose();
    }

    [Fact]
    public async Task Abandon_SendsWhatIsStillQueuedToTheThreadPool()
    {
        var scheduler = new LoopScheduler(_time, _blocked.Add, TakeOver);
        var queued = Ran();
        OnLoop(scheduler, () =>
        {
            scheduler.Schedule(queued.Run, null);
            scheduler.Abandon();
        });

        Assert.True(await queued.OnThePool.Task.WaitAsync(s_timeout));
        Assert.True(scheduler.IsInline);
    }

    /// <summary>Runs <paramref name="body"/> on a dedicated thread bound as the loop's, as an event loop's thread is.</summary>
    private static void OnLoop(LoopScheduler scheduler, Action body)
    {
        Exception? failed = null;
        var loop = new Thread(() =>
        {
            try
            {
                scheduler.BindToCurrentThread();
                body();
            }
            catch (Exception e)
            {
                failed = e;
            }
        });
        loop.Start();
        Assert.True(loop.Join(s_timeout), "the loop's thread did not finish");
        if (failed is not null)
        {
            throw new Xunit.Sdk.XunitException($"The loop's thread failed: {failed}");
        }
    }

    private Resumption Ran(TimeSpan advance = default) => new(_time, advance);

    /// <summary>The event loop's part of a take-over: whether it could start the loop's new thread.</summary>
    private bool TakeOver(TimeSpan held)
    {
        _takenOver.Add(held);
        return _threadStarts;
    }

    /// <summary>The fake clock, with a hook where the watch stops its timer (a change to an infinite due time).</summary>
    private sealed class HookedTime(FakeTimeProvider inner) : TimeProvider
    {
        public Action? Stopping { get; set; }

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override long GetTimestamp() => inner.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new HookedTimer(this, inner.CreateTimer(callback, state, dueTime, period));

        private sealed class HookedTimer(HookedTime time, ITimer timer) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                if (dueTime == Timeout.InfiniteTimeSpan)
                {
                    time.Stopping?.Invoke();
                }

                return timer.Change(dueTime, period);
            }

            public void Dispose() => timer.Dispose();

            public ValueTask DisposeAsync() => timer.DisposeAsync();
        }
    }

    private sealed class Resumption(FakeTimeProvider time, TimeSpan advance)
    {
        public TaskCompletionSource<bool> OnThePool { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Run(object? state)
        {
            time.Advance(advance);
            OnThePool.TrySetResult(Thread.CurrentThread.IsThreadPoolThread);
        }
    }
}
