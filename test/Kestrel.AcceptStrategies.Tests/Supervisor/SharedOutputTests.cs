using System.Text.Json;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests.Supervisor;

/// <summary>The supervisor and its workers write to one standard output: no line may be cut by another's.</summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed class SharedOutputTests
{
    [Fact]
    public async Task JsonLogs_TwoWorkersLoggingAtOnce_EveryLineWhole()
    {
        // Kestrel's and the app's debug logs: several JSON lines of 300-700 bytes per request, from both workers at once.
        await using var group = await WorkerGroup.StartAsync(
            2, AcceptStrategy.ReusePort, "--Logging:LogLevel:Microsoft.AspNetCore=Debug");

        Assert.Empty(await Load.RunAsync(group.Address, 2000, 16, connectionClose: true));

        var lines = group.Supervisor.Lines.Where(l => l.StartsWith('{') || l.Contains("{\"EventId\"", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count > 2000, $"only {lines.Count} JSON lines: the load logged too little to tell");
        Assert.True(lines.Count(l => l.Length > 256) > 1000, "too few lines longer than the console's 256-byte pieces");
        var broken = lines.Where(l => !IsJson(l)).Take(5).ToList();
        Assert.True(broken.Count == 0, $"lines cut by another process's:\n{string.Join('\n', broken)}");
    }

    private static bool IsJson(string line)
    {
        try
        {
            using var _ = JsonDocument.Parse(line);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
