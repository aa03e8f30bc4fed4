using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// What an app that calls <c>app.Run()</c> without a try/catch does with invalid options: the host logs the one error
/// block and rethrows it, and the runtime would print it again with a stack trace and abort (exit 134, a core dump
/// where enabled). Armed only once start-up has found invalid options, this turns that one exception, left unhandled,
/// into a flush of the logs and exit code 78 (EX_CONFIG). An app that catches the exception sees nothing of it.
/// </summary>
internal static class StartupFailureExit
{
    /// <summary>sysexits.h's EX_CONFIG: a configuration error, which systemd's RestartPreventExitStatus= can name.</summary>
    public const int ExitCode = 78;

    private static IServiceProvider? s_services;
    private static int s_armed;

    public static void Arm(IServiceProvider services)
    {
        s_services = services;
        if (Interlocked.Exchange(ref s_armed, 1) == 0)
        {
            AppDomain.CurrentDomain.UnhandledException += OnUnhandledException;
        }
    }

    private static void OnUnhandledException(object sender, UnhandledExceptionEventArgs e)
    {
        if (e.ExceptionObject is not AcceptStrategyOptionsException problems)
        {
            return;
        }

        try
        {
            // The console logger writes from a queue; disposing its provider writes what is queued, the host's error included.
            var providers = s_services?.GetServices<ILoggerProvider>().ToList() ?? [];
            foreach (var provider in providers)
            {
                provider.Dispose();
            }

            if (providers.Count == 0)
            {
                // No logger took the host's report: this is the only place the user can read it.
                Console.Error.WriteLine(problems.Message);
            }
        }
        catch (Exception flush) when (flush is ObjectDisposedException or InvalidOperationException)
        {
            // Already disposed: nothing is left to write.
        }

        Environment.Exit(ExitCode);
    }
}
