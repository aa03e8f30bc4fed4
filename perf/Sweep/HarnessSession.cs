using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// What both commands (the sweep and <c>compare</c>) set up around their runs: a private network namespace when asked
/// and possible (else a note saying why the host's is used), and Ctrl+C or SIGTERM (kill, a CI timeout, a job started
/// in the background, where SIGINT is ignored) cancelling <see cref="Cancellation"/> so every server is stopped.
/// </summary>
internal sealed class HarnessSession : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly PosixSignalRegistration _interrupt;
    private readonly PosixSignalRegistration _terminate;

    public HarnessSession(bool useNetworkNamespace, List<string> notes, Progress progress)
    {
        if (useNetworkNamespace)
        {
            Namespace = NetworkNamespace.TryCreate(out var whyNot);
            if (Namespace is null)
            {
                notes.Add($"Host network namespace ({whyNot}): connection-per-request runs share the host's TIME_WAIT table and port range.");
                progress.Note(notes[^1]);
            }
        }

        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
    }

    /// <summary>The private network namespace, or null on the host's.</summary>
    public NetworkNamespace? Namespace { get; }

    public CancellationToken Cancellation => _cancel.Token;

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
        Namespace?.Dispose();
        _cancel.Dispose();
    }

    private void Stop(PosixSignalContext context)
    {
        context.Cancel = true;
        _cancel.Cancel();
    }
}
