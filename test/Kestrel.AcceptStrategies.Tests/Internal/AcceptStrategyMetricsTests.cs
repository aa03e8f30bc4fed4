using System.Diagnostics.Metrics;
using Kestrel.AcceptStrategies.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Kestrel.AcceptStrategies.Tests.Internal;

/// <summary>The Meter as dotnet-counters or OpenTelemetry read it.</summary>
public sealed class AcceptStrategyMetricsTests
{
    [Fact]
    public void WorkersAlive_OutsideASupervisor_NoSeriesAtAll()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new AcceptStrategyMetrics(services.GetRequiredService<IMeterFactory>());

        var (published, values) = ReadWorkersAlive(services);

        Assert.True(published);
        Assert.Empty(values);
        GC.KeepAlive(metrics);
    }

    [Fact]
    public void WorkersAlive_InASupervisor_TheLiveCount()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new AcceptStrategyMetrics(services.GetRequiredService<IMeterFactory>());
        metrics.ObserveWorkersAlive(() => 3);

        var (_, values) = ReadWorkersAlive(services);

        Assert.Equal([3], values);
    }

    private static (bool Published, List<int> Values) ReadWorkersAlive(IServiceProvider services)
    {
        var factory = services.GetRequiredService<IMeterFactory>();
        var published = false;
        var values = new List<int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == AcceptStrategyMetrics.WorkersAliveName && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                published = true;
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((_, value, _, _) => values.Add(value));
        listener.Start();
        listener.RecordObservableInstruments();
        return (published, values);
    }
}
