namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>Holds /slow requests until released, and tells when one has arrived.</summary>
internal sealed class SlowGate
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
