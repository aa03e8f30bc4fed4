using System.Reflection;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// Paths the test project writes into its assembly at build time (<c>AssemblyMetadata</c> items in its .csproj):
/// source paths seen by the compiler are mapped to <c>/_/</c> in a CI build, so nothing is found relative to them.
/// </summary>
internal static class BuildPaths
{
    public static string Of(string key) =>
        typeof(BuildPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().SingleOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException(
            $"{typeof(BuildPaths).Assembly.GetName().Name} has no build metadata '{key}'; its .csproj writes it as an AssemblyMetadata item.");
}
