namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>
/// Tests that compare this process's descriptor table before and after: no other test may open or close descriptors
/// meanwhile, so they run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DescriptorCounting
{
    public const string Name = "Descriptor counting";
}
