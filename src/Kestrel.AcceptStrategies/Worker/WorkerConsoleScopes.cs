using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Workers share the supervisor's standard output: their console lines show scopes, and so the worker's identity,
/// unless the app set <c>Logging:Console:FormatterOptions:IncludeScopes</c> itself.
/// </summary>
internal sealed class WorkerConsoleScopes(IConfiguration configuration) :
    IPostConfigureOptions<SimpleConsoleFormatterOptions>, IPostConfigureOptions<JsonConsoleFormatterOptions>, IPostConfigureOptions<ConsoleFormatterOptions>
{
    private bool Chosen => configuration["Logging:Console:FormatterOptions:IncludeScopes"] is not null;

    public void PostConfigure(string? name, SimpleConsoleFormatterOptions options) => options.IncludeScopes |= !Chosen;

    public void PostConfigure(string? name, JsonConsoleFormatterOptions options) => options.IncludeScopes |= !Chosen;

    public void PostConfigure(string? name, ConsoleFormatterOptions options) => options.IncludeScopes |= !Chosen;
}
