namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// Jain's fairness index, (Σx)² / (n·Σx²): 1 when every worker (or acceptor) took the same share, 1/n when one took
/// everything. R. Jain, D. Chiu, W. Hawe, "A Quantitative Measure of Fairness and Discrimination", DEC-TR-301, 1984.
/// </summary>
internal static class JainFairness
{
    /// <summary>The index over <paramref name="shares"/>, or null when there are fewer than two or nothing was shared.</summary>
    public static double? Index(IReadOnlyCollection<double> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        if (shares.Count < 2)
        {
            return null;
        }

        double sum = 0, sumOfSquares = 0;
        foreach (var x in shares)
        {
            if (x < 0 || double.IsNaN(x))
            {
                throw new ArgumentException($"A share cannot be negative or NaN: {x}.", nameof(shares));
            }

            sum += x;
            sumOfSquares += x * x;
        }

        return sumOfSquares == 0 ? null : sum * sum / (shares.Count * sumOfSquares);
    }
}
