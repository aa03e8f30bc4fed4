using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Installs <see cref="AtomicConsole"/> in worker mode (a supervisor and its workers), as the host builds its logging:
/// the console logger takes <see cref="Console.Out"/> when it is created, and every console formatter reads its
/// options before that, so this is the last moment the writers can change and still carry the log lines. The role is
/// decided from the options as they end up (configuration, then code), so a one-process app's console is left alone,
/// including one that <c>dotnet watch</c> runs.
/// </summary>
internal sealed class SharedConsoleSetup(WorkerProcessModel model, IOptions<WorkerProcessOptions> options) :
    IConfigureOptions<ConsoleLoggerOptions>,
    IConfigureOptions<SimpleConsoleFormatterOptions>,
    IConfigureOptions<JsonConsoleFormatterOptions>,
    IConfigureOptions<ConsoleFormatterOptions>
{
    public void Configure(ConsoleLoggerOptions options) => InstallInWorkerMode();

    public void Configure(SimpleConsoleFormatterOptions options) => InstallInWorkerMode();

    public void Configure(JsonConsoleFormatterOptions options) => InstallInWorkerMode();

    public void Configure(ConsoleFormatterOptions options) => InstallInWorkerMode();

    private void InstallInWorkerMode()
    {
        if (!AtomicConsole.Installed && ProcessRoles.InWorkerMode(model, options.Value))
        {
            AtomicConsole.Install();
        }
    }
}
