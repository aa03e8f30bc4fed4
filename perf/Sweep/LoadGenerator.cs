using System.Diagnostics;
using System.Globalization;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>Runs ab or wrk against one server on loopback, bounded in count and time, and parses what it reports.</summary>
internal sealed class LoadGenerator(NetworkNamespace? ns, int connections, int abRequests, int wrkSeconds)
{
    public async Task<LoadResult> RunAsync(
        LoadMode mode, Uri url, int? requests = null, int? seconds = null, CancellationToken cancellationToken = default)
    {
        var command = Command(mode, url, requests ?? abRequests, seconds ?? wrkSeconds);
        if (ns is not null)
        {
            command = [.. ns.Wrap(command)];
        }

        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        // ab -s and wrk --timeout bound each request; this bounds the run should the tool itself hang.
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(mode.Tool == "ab" ? 60 + ((requests ?? abRequests) / 1000) : (seconds ?? wrkSeconds) + 30));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{string.Join(' ', command)} did not finish in time.");
        }

        var output = await stdout;
        try
        {
            return mode.Tool == "ab" ? AbOutputParser.Parse(output) : WrkOutputParser.Parse(output);
        }
        catch (FormatException e)
        {
            throw new InvalidOperationException(
                $"{string.Join(' ', command)} exited with {process.ExitCode}: {(await stderr).Trim()}\n{e.Message}", e);
        }
    }

    private string[] Command(LoadMode mode, Uri url, int requests, int seconds) => mode.Tool switch
    {
        "ab" => ["ab", "-q", "-s", "10", "-c", Invariant(connections), "-n", Invariant(requests), .. mode.KeepAlive ? ["-k"] : Array.Empty<string>(), url.ToString()],
        _ =>
        [
            "wrk", "-t1", $"-c{Invariant(connections)}", $"-d{Invariant(seconds)}s", "--timeout", "5s", "--latency",
            .. mode.KeepAlive ? Array.Empty<string>() : ["-H", "Connection: close"], url.ToString(),
        ],
    };

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
