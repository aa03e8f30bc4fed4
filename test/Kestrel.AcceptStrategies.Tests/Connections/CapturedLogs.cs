using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// One entry as a logger provider receives it. The structured state's fields are kept as text, so tests read fields,
/// not wording; they are copied when the entry is logged, since some states read a request that is gone afterwards.
/// </summary>
internal sealed record LogEntry(
    string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyList<KeyValuePair<string, string?>> State, Exception? Exception)
{
    /// <summary>Whether any field of the state is <paramref name="value"/> (or the message names it).</summary>
    public bool Carries(string value) =>
        State.Any(p => string.Equals(p.Value, value, StringComparison.Ordinal)) || Message.Contains(value, StringComparison.Ordinal);

    public override string ToString() =>
        $"{Level} {Category}[{EventId.Id}:{EventId.Name}] {Message}{(Exception is null ? "" : $" ({Exception.GetType().Name}: {Exception.Message})")}";
}

/// <summary>
/// An <see cref="ILoggerProvider"/> added to a test host like any other provider: keeps every entry its loggers are
/// given (the host's filters decide which) and lets a test wait for one.
/// </summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    private readonly object _gate = new();
    private readonly List<LogEntry> _entries = [];
    private readonly List<(Func<LogEntry, bool> Match, TaskCompletionSource<LogEntry> Found)> _waiters = [];

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

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>The first entry (already logged or still to come) that matches, within <paramref name="timeout"/>.</summary>
    public async Task<LogEntry> WaitForAsync(Func<LogEntry, bool> match, TimeSpan timeout, string what)
    {
        var found = new TaskCompletionSource<LogEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_entries.FirstOrDefault(match) is { } seen)
            {
                return seen;
            }

            _waiters.Add((match, found));
        }

        try
        {
            return await found.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                _waiters.RemoveAll(w => w.Found == found);
            }

            throw new TimeoutException($"No {what} was logged within {timeout}. Logged meanwhile:\n  {string.Join("\n  ", Entries)}");
        }
    }

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        List<TaskCompletionSource<LogEntry>> found = [];
        lock (_gate)
        {
            _entries.Add(entry);
            _waiters.RemoveAll(w =>
            {
                if (!w.Match(entry))
                {
                    return false;
                }

                found.Add(w.Found);
                return true;
            });
        }

        found.ForEach(f => f.TrySetResult(entry));
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Add(new LogEntry(
                category,
                logLevel,
                eventId,
                formatter(state, exception),
                state is IReadOnlyList<KeyValuePair<string, object?>> fields ? [.. fields.Select(f => KeyValuePair.Create(f.Key, f.Value?.ToString()))] : [],
                exception));
    }
}
