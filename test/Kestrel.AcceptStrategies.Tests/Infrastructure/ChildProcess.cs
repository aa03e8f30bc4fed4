using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Threading.Channels;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// The BenchmarkApp as a real child process, its output collected line by line so tests wait for what it says.
/// Killed with its whole tree on dispose.
/// </summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Channel<string> _newLines = Channel.CreateUnbounded<string>();
    private int _openStreams = 2;

    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _outputEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process)
    {
        _process = process;
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => _exited.TrySetResult();
        if (process.HasExited)
        {
            _exited.TrySetResult();
        }

        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string BenchmarkAppPath { get; } = BuildPaths.Of("BenchmarkAppPath");

    public int Id => _process.Id;

    /// <summary>Every line so far (stdout and stderr, as they arrived).</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Starts the BenchmarkApp (or a copy at <paramref name="appPath"/>) through a shell so a <c>ulimit</c> can be applied first.</summary>
    /// <remarks>
    /// Single-line simple console logs unless <paramref name="appLogging"/> is set: then the app logs exactly as its
    /// appsettings.json says, as a user's deployment would.
    /// </remarks>
    public static ChildProcess StartBenchmarkApp(
        string arguments, string? shellPrefix = null, IDictionary<string, string>? environment = null, string? appPath = null, bool appLogging = false)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"{shellPrefix}exec dotnet \"{appPath ?? BenchmarkAppPath}\" {arguments}");
        if (!appLogging)
        {
            start.Environment["Logging__Console__FormatterName"] = "simple";
            start.Environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return new ChildProcess(Process.Start(start)!);
    }

    // Read when used: the perf tests compile this file too and have no stock app.
    public static string StockAppPath => BuildPaths.Of("StockAppPath");

    /// <summary>
    /// Starts the stock app (test/StockApp) from its own directory, as <c>dotnet run</c> would, with nothing set for
    /// tests: its appsettings.json and the console logger's defaults decide what it prints.
    /// </summary>
    public static ChildProcess StartStockApp(string arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(StockAppPath)!,
        };
        start.ArgumentList.Add(StockAppPath);
        foreach (var argument in arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            start.ArgumentList.Add(argument);
        }

        // A test run's own logging settings must not reach the app.
        foreach (var variable in start.Environment.Keys.Where(k => k.StartsWith("Logging__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(variable);
        }

        return new ChildProcess(Process.Start(start)!);
    }

    /// <summary>
    /// Starts the BenchmarkApp with JSON console logs, so tests can wait for the library's events by id
    /// (<see cref="WaitForEventAsync"/>) rather than by the wording of a message.
    /// </summary>
    public static ChildProcess StartBenchmarkAppWithJsonLogs(string arguments, IDictionary<string, string>? environment = null) =>
        StartBenchmarkApp(arguments, environment: new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["Logging__Console__FormatterName"] = "json" });

    /// <summary>The library's log events so far (JSON console logs only), in order.</summary>
    public IReadOnlyList<LogEvent> Events =>
        [.. Lines.Select(l => LogEvent.TryParse(l, out var e) ? e : null).OfType<LogEvent>().Where(e => e.Category.StartsWith("Kestrel.AcceptStrategies", StringComparison.Ordinal))];

    /// <summary>Waits for the library's event <paramref name="eventId"/> matching <paramref name="where"/>.</summary>
    public async Task<LogEvent> WaitForEventAsync(int eventId, Func<LogEvent, bool>? where, TimeSpan timeout)
    {
        var line = await WaitForLineAsync(
            l => LogEvent.TryParse(l, out var e) && e.EventId == eventId && e.Category.StartsWith("Kestrel.AcceptStrategies", StringComparison.Ordinal) && (where?.Invoke(e) ?? true),
            timeout);
        return LogEvent.TryParse(line, out var found) ? found : throw new InvalidOperationException($"Not an event: {line}");
    }

    /// <summary>Waits for the app's "Now listening on" line and returns that address.</summary>
    public async Task<Uri> WaitForListeningAsync()
    {
        var line = await WaitForLineAsync(l => l.Contains("Now listening on:", StringComparison.Ordinal), TestServer.Timeout);
        return new Uri(ListeningRegex().Match(line).Groups[1].Value);
    }

    /// <summary>
    /// Every address a "Now listening on" line named so far, in order, each once (a supervisor's workers log the
    /// addresses they inherit again).
    /// </summary>
    public IReadOnlyList<Uri> ListeningAddresses =>
    [
        .. Lines.Select(l => ListeningRegex().Match(l)).Where(m => m.Success).Select(m => new Uri(m.Groups[1].Value)).Distinct(),
    ];

    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            lock (_lines)
            {
                var seen = _lines.FirstOrDefault(predicate);
                if (seen is not null)
                {
                    return seen;
                }
            }

            while (true)
            {
                var line = await _newLines.Reader.ReadAsync(cts.Token);
                if (predicate(line))
                {
                    return line;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The expected line did not appear within {timeout}. Output so far:\n{Output}");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"The process exited before the expected line appeared. Output:\n{Output}");
        }
    }

    /// <summary>Waits for any new output line (or the end of output, which also ends the wait).</summary>
    public async Task WaitForNextLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            if (!await _newLines.Reader.WaitToReadAsync(cts.Token))
            {
                throw new InvalidOperationException($"The process and its children closed their output. Output:\n{Output}");
            }

            _newLines.Reader.TryRead(out _);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException();
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Completes when the process has exited, whoever still holds its output (<see cref="WaitForExitAsync"/> also waits
    /// for the end of the output, which a process it started may keep open).
    /// </summary>
    public Task Exited => _exited.Task;

    public int ExitCode => _process.ExitCode;

    public Task WaitForExitAsync(TimeSpan timeout) => _process.WaitForExitAsync().WaitAsync(timeout);

    /// <summary>
    /// Whether the runtime aborted the process for want of a file descriptor: it prints a line "Out of memory." and
    /// exits. A process whose output goes on for a second did not (whatever failed is the caller's to report); one
    /// whose output ended is waited for (bounded), since its exit can be known after its last line is read, or before.
    /// </summary>
    public async Task<bool> RuntimeAbortedAsync()
    {
        if (await Task.WhenAny(_outputEnded.Task, Task.Delay(TimeSpan.FromSeconds(1))) != _outputEnded.Task)
        {
            return false;
        }

        await Exited.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(static _ => { }, TaskScheduler.Default);
        return _process.HasExited && Lines.Any(static l => l.Trim() == "Out of memory.");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync().WaitAsync(TestServer.Timeout);
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            // stdout and stderr end separately; an error written to stderr can still be arriving after stdout's end.
            if (Interlocked.Decrement(ref _openStreams) == 0)
            {
                _newLines.Writer.TryComplete();
                _outputEnded.TrySetResult();
            }

            return;
        }

        lock (_lines)
        {
            _lines.Add(line);
        }

        _newLines.Writer.TryWrite(line);
    }

    // The address ends at white space, or at the quote that closes a JSON console formatter's message.
    [GeneratedRegex(@"Now listening on:\s*([^\s""]+)")]
    private static partial Regex ListeningRegex();
}
