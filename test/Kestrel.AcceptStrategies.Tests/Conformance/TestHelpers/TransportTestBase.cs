using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// Base of every conformance class. A class <c>XTests : TransportTestBase</c> holds the test cases; four sealed
/// classes <c>XTestsOnSockets</c>, <c>…OnReusePort</c>, <c>…OnThunderingHerd</c> and <c>…OnSerialized</c> each name
/// the <see cref="Transport"/>, so xUnit runs every case once per transport. xUnit makes a new instance per case, so
/// each case has its own <see cref="Log"/>.
/// </summary>
/// <remarks>
/// A case fails at the end if any host logged a Critical entry: Kestrel logs one only for a fault of its own or of
/// the transport, which no test here expects. A class that sets <see cref="FailOnUngracefulShutdown"/> also fails a
/// case whose host had to abort connections when it stopped.
/// </remarks>
public abstract class TransportTestBase : IDisposable
{
    /// <summary>The transport every host of this test runs on.</summary>
    protected abstract TestTransport Transport { get; }

    /// <summary>Every entry the test's hosts logged.</summary>
    protected LogCapture Log { get; } = new();

    /// <summary>
    /// When set, the case fails at the end if a host's stop did not let every connection close gracefully (Kestrel's
    /// NotAllConnectionsClosedGracefully or NotAllConnectionsAborted).
    /// </summary>
    protected bool FailOnUngracefulShutdown { get; set; }

    /// <summary>Starts a host on <see cref="Transport"/> that runs <paramref name="app"/> for every request.</summary>
    protected Task<RunningServer> StartServerAsync(RequestDelegate app, ServerSetup? setup = null) =>
        RunningServer.StartAsync(Transport, Log, app, setup);

    /// <summary>Waits (bounded) for the first log entry that matches <paramref name="match"/>.</summary>
    protected Task<LogEntry> LoggedAsync(Func<LogEntry, bool> match) => Log.WhenLogged(match).OrTimeout();

    /// <summary>Waits (bounded) for a transport event.</summary>
    protected Task<LogEntry> LoggedAsync(TransportEvent transportEvent) => LoggedAsync(TransportEvents.Transport(transportEvent));

    /// <summary>
    /// Runs an app's body and reports how it ended to <paramref name="outcome"/> (then rethrows a failure to Kestrel), so
    /// an assertion that fails inside the app fails the test with its own message rather than as a timeout.
    /// </summary>
    protected static async Task ReportTo(TaskCompletionSource outcome, Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            await body();
            outcome.TrySetResult();
        }
        catch (Exception ex)
        {
            outcome.TrySetException(ex);
            throw;
        }
    }

    /// <summary>The exception <paramref name="operation"/> ends with, or null if it succeeds.</summary>
    protected static async Task<Exception?> FailureOf(Func<Task> operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        try
        {
            await operation();
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    /// <summary>Holds a request (an upgraded one, typically) until its connection goes away; bounded.</summary>
    protected static async Task UntilRequestAborted(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (context.RequestAborted.Register(() => aborted.TrySetResult()))
        {
            await aborted.Task.OrTimeout();
        }
    }

    /// <summary>For a host a test builds itself: <c>.ConfigureServices(AttachLog)</c>.</summary>
    protected void AttachLog(IServiceCollection services) => Log.AttachTo(services);

    /// <summary>Exactly one entry matches <paramref name="match"/>; on failure the message lists Kestrel's and the transport's entries.</summary>
    protected void AssertLoggedOnce(Func<LogEntry, bool> match, string what)
    {
        ArgumentNullException.ThrowIfNull(match);
        var entries = Log.Entries;
        var count = entries.Count(match);
        Assert.True(count == 1, $"Expected {what} to be logged once, found {count} times. Kestrel and transport entries:{Environment.NewLine}"
            + string.Join(Environment.NewLine, entries.Where(TransportEvents.FromKestrelOrTransport)));
    }

    /// <summary>Nothing from Kestrel or the transport was logged above Debug (a client's disconnect is not an error).</summary>
    protected void AssertNothingAboveDebug()
    {
        var loud = Log.Entries.Where(e => TransportEvents.FromKestrelOrTransport(e) && e.Level > LogLevel.Debug && !TransportEvents.LoopHeld(e)).ToArray();
        Assert.True(loud.Length == 0, "Logged above Debug:" + Environment.NewLine + string.Join(Environment.NewLine, loud.AsEnumerable()));
    }

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            var critical = Log.Entries.Where(e => e.Level == LogLevel.Critical).ToArray();
            Assert.True(critical.Length == 0, "Critical log entries:" + Environment.NewLine + string.Join(Environment.NewLine, critical.AsEnumerable()));
            if (FailOnUngracefulShutdown)
            {
                var ungraceful = Log.Entries.Where(e => TransportEvents.FromKestrel(e) && e.Event.Name is "NotAllConnectionsClosedGracefully" or "NotAllConnectionsAborted").ToArray();
                Assert.True(ungraceful.Length == 0, "Ungraceful shutdown:" + Environment.NewLine + string.Join(Environment.NewLine, ungraceful.AsEnumerable()));
            }
        }
    }
}
