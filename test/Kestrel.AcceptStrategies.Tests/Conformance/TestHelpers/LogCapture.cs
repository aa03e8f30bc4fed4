using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>One entry a host under test logged.</summary>
public sealed record LogEntry(string Category, LogLevel Level, EventId Event, string Message, Exception? Exception)
{
    public override string ToString() =>
        $"{Level} {Category} [{Event.Id}/{Event.Name}] {Message}{(Exception is null ? "" : Environment.NewLine + Exception)}";
}

/// <summary>
/// A logger provider that keeps every entry of every category and level, for one test. Besides the list of entries it
/// answers "has (or will) an entry like this be logged?" with a task (<see cref="WhenLogged"/>), so a test waits for a
/// transport event instead of sleeping and polling.
/// </summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly Lock _gate = new();
    private readonly List<LogEntry> _entries = [];
    private readonly List<(Func<LogEntry, bool> Match, TaskCompletionSource<LogEntry> Found)> _watchers = [];

    /// <summary>A copy of the entries so far, oldest first.</summary>
    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>
    /// Completes with the first entry matching <paramref name="match"/>, whether it was logged before this call or is
    /// logged later. Unbounded: await it with <see cref="Deadline.OrTimeout{T}(Task{T}, TimeSpan?)"/>.
    /// </summary>
    public Task<LogEntry> WhenLogged(Func<LogEntry, bool> match)
    {
        ArgumentNullException.ThrowIfNull(match);
        var found = new TaskCompletionSource<LogEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var earlier = _entries.Find(e => match(e));
            if (earlier is not null)
            {
                found.SetResult(earlier);
            }
            else
            {
                _watchers.Add((match, found));
            }
        }

        return found.Task;
    }

    /// <summary>Registers this provider on a host, at every level, leaving the host's other providers as they are.</summary>
    public void AttachTo(IServiceCollection services) =>
        services.AddLogging(logging => logging.AddProvider(this).AddFilter<LogCapture>(null, LogLevel.Trace));

    public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

    public void Dispose()
    {
        // The entries stay readable after the hosts that logged them are gone.
    }

    private void Add(LogEntry entry)
    {
        lock (_gate)
        {
            _entries.Add(entry);
            _watchers.RemoveAll(w => w.Match(entry) && w.Found.TrySetResult(entry));
        }
    }

    private sealed class CategoryLogger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Add(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception));
    }
}
