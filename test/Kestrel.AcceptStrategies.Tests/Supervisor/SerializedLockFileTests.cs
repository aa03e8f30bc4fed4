using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>
/// The Serialized strategy's accept lock between worker processes: a file, but one no tmp cleaner can take away.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SerializedLockFileTests
{
    [Fact]
    public async Task SerializedLock_NothingLeftOnDiskAfterStart_SighupAfterTmpCleanupStillServes()
    {
        // The supervisor puts its lock directory in XDG_RUNTIME_DIR: a directory of this test's own.
        var runtime = Directory.CreateTempSubdirectory("accept-lock-test-").FullName;
        try
        {
            await using var group = await WorkerGroup.StartAsync(
                2, AcceptStrategy.Serialized, environment: new Dictionary<string, string> { ["XDG_RUNTIME_DIR"] = runtime });
            var first = group.Ready.ToList();

            // What a tmp cleaner (systemd-tmpfiles, tmpreaper) does to an old directory.
            var leftOnDisk = Directory.EnumerateFileSystemEntries(runtime).ToList();
            foreach (var entry in leftOnDisk)
            {
                Directory.Delete(entry, recursive: true);
            }

            using var stop = new CancellationTokenSource();
            var load = Load.RunUntilAsync(group.Address, 8, connectionClose: true, TimeSpan.FromSeconds(60), stop.Token);
            group.Signal("HUP");
            await group.WaitUntilAsync(
                g => first.All(w => g.Exited.Any(e => e.Pid == w.Pid && e.Reason == "reload"))
                    && g.Ready.Count(r => r.Generation > 1) >= 2,
                TimeSpan.FromSeconds(40),
                "both workers replaced by reloaded ones that are ready");
            await stop.CancelAsync();
            var (completed, failures) = await load;

            Assert.Empty(leftOnDisk);
            Assert.Empty(failures);
            Assert.True(completed > 0, "no request completed");
            Assert.DoesNotContain(group.Exited, e => e.Reason is "failed_to_start" or "crashed");
        }
        finally
        {
            Directory.Delete(runtime, recursive: true);
        }
    }
}
