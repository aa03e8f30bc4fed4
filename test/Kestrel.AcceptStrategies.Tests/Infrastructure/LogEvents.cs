namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>The library's stable log event ids that tests read (see Internal/AcceptStrategyLog.cs).</summary>
internal static class LogEvents
{
    public const int ListenerBound = 1;
    public const int AcceptError = 2;
    public const int AcceptRecovered = 3;
    public const int WorkerStarted = 11;
    public const int WorkerReady = 12;
    public const int WorkerExited = 13;
    public const int WorkerRespawnDelayed = 14;
    public const int SignalReceived = 16;
    public const int WorkerSpawnFailed = 17;
    public const int SupervisorEventFailed = 19;
    public const int WorkerDraining = 22;
    public const int SupervisorLost = 23;
    public const int RecycleDeferred = 24;
    public const int ReloadNeedsRestart = 27;
    public const int ReloadRejected = 28;
    public const int ConfigurationReloaded = 26;
    public const int SupervisorStarted = 30;
    public const int ServiceManagerNotified = 31;
    public const int DescriptorLimitLow = 33;
    public const int SteeringUnavailable = 34;
    public const int Steered = 35;
    public const int UpgradeStarted = 36;
    public const int UpgradeCompleted = 37;
    public const int UpgradeFailed = 38;
    public const int UpgradeTookOver = 39;
    public const int WatchRunsSingleProcess = 52;
    public const int SharedConsole = 59;
    public const int KestrelConfigurationChanged = 53;
    public const int WorkerRuntimeProfile = 54;
    public const int PoolGrown = 55;
    public const int PoolShrunk = 56;
    public const int WorkerWarmedUp = 20;
    public const int WorkerWarmupFailed = 21;
    public const int SupervisorTimerFired = 65;
    public const int HeartbeatReceived = 66;
    public const int WorkerOverMemory = 70;
    public const int StatusEndpointListening = 60;
    public const int StatusSocketRemoved = 61;
    public const int StatusEndpointDeferred = 67;
    public const int UnixEndpointShared = 78;
}
