using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Installs <see cref="AtomicConsole"/> in worker mode (a supervisor and its workers), as the host builds its logging:
/// the console logger takes <see cref="Console.Out"/> when it is created, and every console formatter reads its
/// options before that, so this is the last moment the writers can change and still carry the log lines. Registered
/// only in worker mode; a one-process app's console is left alone.
/// </summary>
internal sealed class SharedConsoleSetup :
    IConfigureOptions<ConsoleLoggerOptions>,
    IConfigureOptions<SimpleConsoleFormatterOptions>,
    IConfigureOptions<JsonConsoleFormatterOptions>,
    IConfigureOptions<ConsoleFormatterOptions>
{
    public void Configure(ConsoleLoggerOptions options) => AtomicConsole.Install();

    public void Configure(SimpleConsoleFormatterOptions options) => AtomicConsole.Install();

    public void Configure(JsonConsoleFormatterOptions options) => AtomicConsole.Install();

    public void Configure(ConsoleFormatterOptions options) => AtomicConsole.Install();
}
