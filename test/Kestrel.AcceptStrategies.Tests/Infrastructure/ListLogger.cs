using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>A logger that keeps every entry, for asserting on event ids in-process.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly ConcurrentQueue<(EventId Id, LogLevel Level, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(EventId Id, LogLevel Level, string Message, Exception? Exception)> Entries => [.. _entries];

    public IReadOnlyList<(EventId Id, LogLevel Level, string Message, Exception? Exception)> WithId(int id) =>
        [.. _entries.Where(e => e.Id.Id == id)];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _entries.Enqueue((eventId, logLevel, formatter(state, exception), exception));
}
