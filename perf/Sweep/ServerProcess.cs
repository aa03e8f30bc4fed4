using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// One BenchmarkApp server (with its workers) on its own loopback port, started through <c>dotnet</c> (a .dll) or
/// directly (an executable, such as a Native AOT publish) and stopped with SIGTERM (graceful) then SIGKILL. Its output
/// is kept for the error message if it fails to start. The sweep and the compare command both start servers this way.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _readyWorkers;

    private ServerProcess(string label, int workers, int port, string? meterDirectory, Process process)
    {
        Label = label;
        Workers = workers;
        Port = port;
        MeterDirectory = meterDirectory;
        _process = process;
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string BenchmarkAppPath { get; } = typeof(ServerProcess).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "BenchmarkAppPath").Value!;

    public string Label { get; }

    /// <summary>Worker processes the server starts (0: one process); it is started once every one is ready.</summary>
    public int Workers { get; }

    public int Port { get; }

    public Uri Url => new(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}/foo?foo=bar&bar=baz&baz=hoge&hoge=foo"));

    /// <summary>The supervisor (or only process). <c>ip netns exec</c> execs in place, so it keeps the pid we started.</summary>
    public int Pid => _process.Id;

    /// <summary>Where every process writes its Meter counters (<c>--MeterSnapshotPath</c>); null when not asked for.</summary>
    public string? MeterDirectory { get; }

    public static ServerProcess Start(ServerConfiguration configuration, string app, int port, string meterDirectory, NetworkNamespace? ns) =>
        Start(configuration.Label, configuration.Workers, configuration.Arguments, environment: null, app, port, meterDirectory, ns);

    /// <param name="environment">Variables set for the server (and so for its workers) on top of the sweep's own.</param>
    public static ServerProcess Start(
        string label, int workers, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment,
        string app, int port, string? meterDirectory, NetworkNamespace? ns)
    {
        IEnumerable<string> command =
        [
            .. app.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? ["dotnet", app] : new[] { app },
            string.Create(CultureInfo.InvariantCulture, $"--urls=http://127.0.0.1:{port}"),
            .. meterDirectory is null ? Array.Empty<string>() : [$"--MeterSnapshotPath={meterDirectory}"],
            .. arguments,
        ];
        if (ns is not null)
        {
            command = ns.Wrap(command);
        }

        var list = command.ToList();
        var start = new ProcessStartInfo(list[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in list.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["Logging__Console__FormatterName"] = "simple";
        start.Environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return new ServerProcess(label, workers, port, meterDirectory, Process.Start(start)!);
    }

    /// <summary>Waits until every worker reported ready and the supervisor's host has started.</summary>
    public async Task WaitStartedAsync(TimeSpan timeout)
    {
        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(_started.Task, exited, Task.Delay(timeout));
        if (first != _started.Task)
        {
            throw new InvalidOperationException(
                $"{Label} did not start within {timeout.TotalSeconds:0} s{(first == exited ? $" (exit code {_process.ExitCode})" : "")}. Output:\n{Output}");
        }
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output.TakeLast(60));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _ = Libc.Kill(_process.Id, Libc.SIGTERM);
                try
                {
                    await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15));
                }
                catch (TimeoutException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }
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
            return;
        }

        lock (_output)
        {
            _output.Add(line);
            // Workers write to the supervisor's output: each says "is ready after", then the supervisor's host starts.
            if (line.Contains("is ready after", StringComparison.Ordinal))
            {
                _readyWorkers++;
            }

            if (line.Contains("Application started.", StringComparison.Ordinal) && _readyWorkers >= Workers)
            {
                _started.TrySetResult();
            }
        }
    }
}
