using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// One BenchmarkApp server (with its workers) on its own loopback port, started through <c>dotnet</c> (a .dll) or
/// directly (an executable, such as a Native AOT publish) and stopped with SIGTERM (graceful) then SIGKILL. Its output is kept for the error message if it fails to start.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _readyWorkers;

    private ServerProcess(ServerConfiguration configuration, int port, string meterDirectory, Process process)
    {
        Configuration = configuration;
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

    public ServerConfiguration Configuration { get; }

    public int Port { get; }

    public Uri Url => new(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}/foo?foo=bar&bar=baz&baz=hoge&hoge=foo"));

    /// <summary>The supervisor (or only process). <c>ip netns exec</c> execs in place, so it keeps the pid we started.</summary>
    public int Pid => _process.Id;

    public string MeterDirectory { get; }

    public static ServerProcess Start(ServerConfiguration configuration, string app, int port, string meterDirectory, NetworkNamespace? ns)
    {
        IEnumerable<string> command =
        [
            .. app.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? ["dotnet", app] : new[] { app },
            string.Create(CultureInfo.InvariantCulture, $"--urls=http://127.0.0.1:{port}"),
            $"--MeterSnapshotPath={meterDirectory}",
            .. configuration.Arguments,
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
        return new ServerProcess(configuration, port, meterDirectory, Process.Start(start)!);
    }

    /// <summary>Waits until every worker reported ready and the supervisor's host has started.</summary>
    public async Task WaitStartedAsync(TimeSpan timeout)
    {
        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(_started.Task, exited, Task.Delay(timeout));
        if (first != _started.Task)
        {
            throw new InvalidOperationException(
                $"{Configuration.Label} did not start within {timeout.TotalSeconds:0} s{(first == exited ? $" (exit code {_process.ExitCode})" : "")}. Output:\n{Output}");
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

            if (line.Contains("Application started.", StringComparison.Ordinal) && _readyWorkers >= Configuration.Workers)
            {
                _started.TrySetResult();
            }
        }
    }
}
