using Kestrel.AcceptStrategies.Sweep;

namespace Kestrel.AcceptStrategies.Perf.Tests.Sweep;

public sealed class JainFairnessTests
{
    [Fact]
    public void Index_EqualShares_IsOne() => Assert.Equal(1.0, JainFairness.Index([250, 250, 250, 250])!.Value, 12);

    [Fact]
    public void Index_OneTakesEverything_IsOneOverN() => Assert.Equal(0.125, JainFairness.Index([0, 0, 0, 800, 0, 0, 0, 0])!.Value, 12);

    [Fact]
    public void Index_UnevenShares_MatchesTheFormula()
    {
        // (1+2+3+4)² / (4 · (1+4+9+16)) = 100 / 120
        Assert.Equal(100.0 / 120, JainFairness.Index([1, 2, 3, 4])!.Value, 12);
        // Scale does not matter.
        Assert.Equal(100.0 / 120, JainFairness.Index([1000, 2000, 3000, 4000])!.Value, 12);
    }

    [Fact]
    public void Index_FewerThanTwoOrNothingShared_IsNull()
    {
        Assert.Null(JainFairness.Index([]));
        Assert.Null(JainFairness.Index([42]));
        Assert.Null(JainFairness.Index([0, 0, 0]));
    }

    [Fact]
    public void Index_NegativeShare_Throws() => Assert.Throws<ArgumentException>(() => JainFairness.Index([1, -1]));
}
