namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// A supervisor log line about one worker: started (with reason and budget), ready, or exited (with reason and the
/// requests it served).
/// </summary>
internal sealed record WorkerEvent(int Pid, int Slot, int Generation, string Reason, long Budget, long Requests = 0);
