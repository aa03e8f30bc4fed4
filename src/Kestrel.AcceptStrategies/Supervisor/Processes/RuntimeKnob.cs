namespace Kestrel.AcceptStrategies.Supervisor.Processes;

/// <summary>
/// One runtime setting of the tuned worker profile: the name the runtime reads from the environment (after
/// <c>DOTNET_</c> or <c>COMPlus_</c>), the runtimeconfig.json property that sets the same thing, and the value.
/// </summary>
internal readonly record struct RuntimeKnob(string EnvironmentName, string RuntimeConfigProperty, string Value)
{
    public string Variable => "DOTNET_" + EnvironmentName;
}
