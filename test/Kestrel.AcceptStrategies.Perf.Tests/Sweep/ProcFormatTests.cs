using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

/// <summary>The /proc and perf formats compare reads, and the readers on this very process.</summary>
public sealed class ProcFormatTests
{
    [Fact]
    public void StatusSwitches_AddsVoluntaryAndInvoluntary()
    {
        const string status = "Name:\tdotnet\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n";

        Assert.Equal(1234, ProcessTree.StatusSwitches(status));
    }

    [Fact]
    public void SmapsRollupPss_ReadsThePssLineNotPssDirty()
    {
        const string rollup = "55754c623000-7ffca8a82000 ---p 00000000 00:00 0                          [rollup]\n" +
            "Rss:                1772 kB\nPss:                 395 kB\nPss_Dirty:           116 kB\n";

        Assert.Equal(395, ProcessTree.SmapsRollupPss(rollup));
        Assert.Throws<FormatException>(() => ProcessTree.SmapsRollupPss("Rss: 1 kB\n"));
    }

    [Fact]
    public void Readers_OnThisProcess_SeeItsThreadsAndMemory()
    {
        var pid = Environment.ProcessId;

        Assert.True(ProcessTree.ContextSwitches(pid) > 0);
        var pss = ProcessTree.PssKiB(pid)[0]; // [0] is this process; its children (other tests' servers) follow
        Assert.True(pss > 1024, $"{pss} KiB");
    }

    [Fact]
    public void SyscallCounterParse_SumsTheEventsCountsAndIgnoresTheRest()
    {
        Assert.Equal(104081, SyscallCounter.Parse("104081,,raw_syscalls:sys_enter,711277269,100.00,,\n"));
        Assert.Equal(30, SyscallCounter.Parse("10,,raw_syscalls:sys_enter,1,100.00,,\n20,,raw_syscalls:sys_enter,1,100.00,,\n5,,cycles,1,100.00,,\n"));
        Assert.Null(SyscallCounter.Parse("<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n"));
        Assert.Null(SyscallCounter.Parse("Error: perf_event_paranoid\n"));
    }
}
