using System.Net.Http;
using System.Text.RegularExpressions;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.Tests.Supervisor;

namespace Kestrel.AcceptStrategies.Tests;

/// <summary>
/// What a user of a stock <c>dotnet new web</c> app with the README's lines sees: its default console logging, no
/// try/catch around <c>app.Run()</c>, nothing set for tests.
/// </summary>
[Collection(SharedWorkerProcesses.Name)]
public sealed partial class StockAppTests
{
    [Theory]
    [InlineData("--AcceptStrategy:Workers=-1", "AcceptStrategy:Workers is not an option of the AcceptStrategy section: it is WorkerProcesses:Workers")]
    [InlineData("--WorkerProcesses:Workers=-1", "WorkerProcesses:Workers = -1 is out of range")]
    public async Task InvalidOption_OneErrorBlock_ExitCode78_NoAbortNoStackTrace(string argument, string expected)
    {
        await using var app = ChildProcess.StartStockApp($"--urls=http://127.0.0.1:0 {argument}");
        await app.WaitForExitAsync(TestServer.Timeout);

        var output = app.Output;
        Assert.True(app.ExitCode == 78, $"exit code {app.ExitCode}:\n{output}");
        Assert.Equal(1, Count(output, "Kestrel.AcceptStrategies cannot start"));
        Assert.Equal(1, Count(output, expected));
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidOptions_EveryProblemOnce_DidYouMean_TimeFormat_NoKnockOn()
    {
        await using var app = ChildProcess.StartStockApp(
            "--urls=http://127.0.0.1:0 --AcceptStrategy:Acceptor=2 --WorkerProcesses:Workers=two " +
            "--WorkerProcesses:StatusEndpoint=http://127.0.0.1:0 --WorkerProcesses:GracefulShutdownTimeout=30");
        await app.WaitForExitAsync(TestServer.Timeout);

        var output = app.Output;
        Assert.True(app.ExitCode == 78, $"exit code {app.ExitCode}:\n{output}");
        Assert.Equal(1, Count(output, "cannot start: 3 problem(s)"));
        Assert.Equal(1, Count(output, "AcceptStrategy:Acceptor is not an option. Did you mean AcceptStrategy:Acceptors?"));
        Assert.Equal(1, Count(output, "WorkerProcesses:Workers = 'two' is not valid: expected a whole number"));
        Assert.Equal(1, Count(output, "WorkerProcesses:GracefulShutdownTimeout = '30' is not valid: expected a duration as hh:mm:ss"));

        // Workers did not bind: "StatusEndpoint needs Workers > 0" would be a problem the user does not have.
        Assert.DoesNotContain("needs Workers > 0", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WorkerMode_DefaultConsole_WorkerLinesLabelled_OneStartupLinePerWorker()
    {
        await using var app = ChildProcess.StartStockApp("--urls=http://127.0.0.1:0 --WorkerProcesses:Workers=2");
        var address = await app.WaitForListeningAsync();
        await app.WaitForLineAsync(_ => Count(app.Output, "is ready after") >= 2, TestServer.Timeout);
        using (var client = new HttpClient { Timeout = TestServer.Timeout })
        {
            Assert.Equal("Hello World!", await client.GetStringAsync(address));
        }

        WorkerGroup.Kill(app.Id, "TERM");
        await app.WaitForExitAsync(TestServer.Timeout);
        var output = app.Output;
        Assert.True(app.ExitCode == 0, $"exit code {app.ExitCode}:\n{output}");

        // The host's start-up lines come once, from the supervisor; a worker's start-up is the supervisor's two lines
        // about it ("started", "ready"), not the host's four again.
        Assert.Equal(1, Count(output, "Now listening on"));
        Assert.Equal(1, Count(output, "Application started"));
        Assert.Equal(1, Count(output, "Content root path"));
        Assert.Equal(2, Count(output, "started in slot"));
        Assert.Equal(2, Count(output, "is ready after"));

        // Nothing changed unasked: the stock app has no spin-limit setting, and the supervisor says so.
        Assert.Equal(1, Count(output, "Thread pool spin limit (UnfairSemaphoreSpinLimit): the runtime's default"));

        // The workers' own lines (their drain, at the stop) name them: the default formatter shows the scope.
        var labelled = WorkerScope().Matches(output).Select(m => m.Groups[1].Value).Distinct().Count();
        Assert.True(labelled == 2, $"{labelled} worker(s) labelled:\n{output}");
    }

    private static int Count(string output, string text) => Regex.Count(output, Regex.Escape(text));

    [GeneratedRegex(@"=> worker (\d+) slot [01] generation 1")]
    private static partial Regex WorkerScope();
}
