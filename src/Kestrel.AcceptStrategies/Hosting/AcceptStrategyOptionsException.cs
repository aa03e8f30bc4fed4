using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Hosting;

/// <summary>
/// Start-up's one error for invalid options: every problem of both sections, one per line. Its text is the whole
/// report (no type name, no stack trace), because the host logs it as it is ("Hosting failed to start") and a user
/// needs the list, not where in the library it was found.
/// </summary>
internal sealed class AcceptStrategyOptionsException(IReadOnlyList<string> problems)
    : OptionsValidationException(Options.DefaultName, typeof(AcceptStrategyOptions), problems)
{
    public override string Message => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"Kestrel.AcceptStrategies cannot start: {problems.Count} problem(s) in its options.{Environment.NewLine}  - {string.Join(Environment.NewLine + "  - ", problems)}");

    public override string ToString() => Message;
}
