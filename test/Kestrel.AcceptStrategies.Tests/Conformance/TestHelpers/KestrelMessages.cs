using System.Globalization;
using System.Resources;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// Kestrel's exception messages, looked up by resource name in the running Kestrel's own string table, so a test
/// compares an exception's message with exactly what this Kestrel version says.
/// </summary>
public static class KestrelMessages
{
    private static readonly ResourceManager Table = new("Microsoft.AspNetCore.Server.Kestrel.Core.CoreStrings", typeof(KestrelServerOptions).Assembly);

    /// <summary>The message named <paramref name="resourceName"/>; an exception if this Kestrel has none by that name.</summary>
    public static string Get(string resourceName) =>
        Table.GetString(resourceName, CultureInfo.InvariantCulture)
        ?? throw new ArgumentException($"Kestrel's string table has no entry '{resourceName}'.", nameof(resourceName));
}
