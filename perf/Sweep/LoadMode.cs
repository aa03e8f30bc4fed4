namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>A load generator and whether it keeps connections alive.</summary>
internal sealed record LoadMode(string Name, string Tool, bool KeepAlive)
{
    public static readonly LoadMode AbClose = new("ab-close", "ab", KeepAlive: false);
    public static readonly LoadMode AbKeepAlive = new("ab-keepalive", "ab", KeepAlive: true);
    public static readonly LoadMode WrkClose = new("wrk-close", "wrk", KeepAlive: false);
    public static readonly LoadMode WrkKeepAlive = new("wrk-keepalive", "wrk", KeepAlive: true);

    public static IReadOnlyList<LoadMode> All { get; } = [AbClose, AbKeepAlive, WrkClose, WrkKeepAlive];

    /// <summary>The Debian package that provides <see cref="Tool"/>.</summary>
    public string DebianPackage => Tool == "ab" ? "apache2-utils" : "wrk";

    public string Description => $"{Tool}, {(KeepAlive ? "keep-alive" : "one connection per request")}";

    public override string ToString() => Name;
}
