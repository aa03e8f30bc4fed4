using Kestrel.AcceptStrategies.Protocol;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// The worker's end of the control socket, in <see cref="ControlMessage"/>s: <c>ready</c>, heartbeats and
/// <c>budget</c> out; <c>accept</c> and <c>drain</c> in.
/// </summary>
internal sealed class WorkerControlClient(WorkerIdentity worker) : IDisposable
{
    private readonly ControlChannel _channel = new(worker.ControlFd);

    /// <summary>Sends one message; false when the supervisor is gone.</summary>
    public bool TrySend(ControlMessage message) => _channel.TrySend(message.ToString());

    /// <summary>The next message this version knows (others are ignored, never trusted); null once the supervisor is gone.</summary>
    public async Task<ControlMessage?> ReceiveAsync()
    {
        while (await _channel.ReceiveAsync(CancellationToken.None).ConfigureAwait(false) is { } text)
        {
            if (ControlMessage.TryParse(text, out var message))
            {
                return message;
            }
        }

        return null;
    }

    public void Dispose() => _channel.Dispose();
}
