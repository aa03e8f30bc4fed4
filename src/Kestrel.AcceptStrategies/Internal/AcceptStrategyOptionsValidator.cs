using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// Checks every option at once, so a bad configuration fails start-up with one message that lists every problem.
/// </summary>
internal sealed class AcceptStrategyOptionsValidator : IValidateOptions<AcceptStrategyOptions>
{
    public const int MaxAcceptors = 1024;

    public ValidateOptionsResult Validate(string? name, AcceptStrategyOptions options)
    {
        var errors = new List<string>(options.ConfigurationErrors);

        if (!OperatingSystem.IsLinux())
        {
            errors.Add($"Kestrel.AcceptStrategies runs on Linux only (it drives poll(2), accept4(2) and eventfd(2) directly); this is {RuntimeInformation.OSDescription}. Call UseAcceptStrategy() only when OperatingSystem.IsLinux().");
        }

        if (!Enum.IsDefined(options.Strategy))
        {
            errors.Add($"AcceptStrategy:Strategy = {(int)options.Strategy} is not a strategy: expected one of {string.Join(", ", Enum.GetNames<AcceptStrategy>())}.");
        }
        else if (options.Strategy == AcceptStrategy.ReusePort && !OperatingSystem.IsLinux())
        {
            errors.Add($"AcceptStrategy:Strategy = ReusePort needs Linux: only Linux balances new connections across SO_REUSEPORT sockets, and this is {RuntimeInformation.OSDescription}.");
        }

        if (options.Acceptors is < 1 or > MaxAcceptors)
        {
            errors.Add($"AcceptStrategy:Acceptors = {options.Acceptors} is out of range: it must be between 1 and {MaxAcceptors}.");
        }

        return errors.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(errors);
    }
}
