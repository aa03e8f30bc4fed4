using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// Workers share the supervisor's standard output: their console lines show scopes, and so the worker's identity,
/// unless the app chose <c>IncludeScopes</c> itself (<c>Logging:Console:FormatterOptions:IncludeScopes</c>, or the
/// older <c>Logging:Console:IncludeScopes</c>).
/// </summary>
/// <remarks>
/// Without a formatter name the console logger copies its own (obsolete) <c>IncludeScopes</c>, false unless set, over
/// the simple formatter's: that default path is the one a stock <c>CreateBuilder</c> app takes, so both are set.
/// </remarks>
internal sealed class WorkerConsoleScopes(IConfiguration configuration) :
    IPostConfigureOptions<SimpleConsoleFormatterOptions>,
    IPostConfigureOptions<JsonConsoleFormatterOptions>,
    IPostConfigureOptions<ConsoleFormatterOptions>,
    IPostConfigureOptions<ConsoleLoggerOptions>
{
    private bool Chosen =>
        configuration["Logging:Console:FormatterOptions:IncludeScopes"] is not null
        || configuration["Logging:Console:IncludeScopes"] is not null;

    public void PostConfigure(string? name, SimpleConsoleFormatterOptions options) => options.IncludeScopes |= !Chosen;

    public void PostConfigure(string? name, JsonConsoleFormatterOptions options) => options.IncludeScopes |= !Chosen;

    public void PostConfigure(string? name, ConsoleFormatterOptions options) => options.IncludeScopes |= !Chosen;

#pragma warning disable CS0618 // The legacy property is what the default formatter path reads.
    public void PostConfigure(string? name, ConsoleLoggerOptions options) => options.IncludeScopes |= !Chosen;
#pragma warning restore CS0618
}
