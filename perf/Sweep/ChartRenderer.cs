using System.Globalization;
using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Kestrel.AcceptStrategies.Sweep;

/// <summary>
/// The seed's graph with OxyPlot: requests/sec against worker processes, one line per strategy and acceptor count,
/// the baseline as a horizontal reference; one SVG per load mode.
/// </summary>
internal static class ChartRenderer
{
    // One colour per strategy; the acceptor count is the line style (solid = 1, dashed = more).
    private static readonly Dictionary<string, OxyColor> s_colors = new(StringComparer.Ordinal)
    {
        ["Serialized"] = OxyColor.Parse("#1f77b4"),
        ["ThunderingHerd"] = OxyColor.Parse("#d62728"),
        ["ReusePort"] = OxyColor.Parse("#2ca02c"),
    };

    public static string Svg(IReadOnlyList<PointSummary> points, LoadMode mode, string subtitle)
    {
        var inMode = points.Where(p => p.Mode == mode).ToList();
        var model = new PlotModel
        {
            Title = $"Requests/sec against worker processes — {mode.Description}",
            Subtitle = subtitle,
            Background = OxyColors.White,
            DefaultFont = "Arial",
            // The SVG's text is measured with Helvetica metrics but drawn by the viewer's font: leave room.
            Padding = new OxyThickness(12, 24, 48, 12),
        };
        model.Legends.Add(new Legend
        {
            LegendPlacement = LegendPlacement.Outside,
            LegendPosition = LegendPosition.RightTop,
            LegendPadding = 16,
            LegendItemSpacing = 16,
            LegendLineSpacing = 6,
            LegendBorder = OxyColors.LightGray,
            LegendTitle = "A = acceptors per process",
        });

        // Worker counts on a log2 scale (1, 2, 4, 8 evenly spaced), labelled with the counts themselves; a linear scale
        // when the list includes 0 (one process).
        var workers = inMode.Where(p => !p.Configuration.IsBaseline).Select(p => p.Configuration.Workers).Distinct().Order().ToList();
        var log = workers.Count > 0 && workers[0] > 0;
        Func<int, double> position = log ? w => Math.Log2(w) : w => w;
        var x = new LinearAxis
        {
            Position = AxisPosition.Bottom,
            Title = log ? "worker processes (log scale)" : "worker processes (0 = one process)",
            MajorGridlineStyle = LineStyle.Dot,
            MajorStep = 1,
            MinorStep = 1,
            Minimum = (workers.Count == 0 ? 0 : position(workers[0])) - 0.3,
            Maximum = (workers.Count == 0 ? 1 : position(workers[^1])) + 0.3,
            LabelFormatter = v => (log ? Math.Pow(2, v) : v).ToString("0.##", CultureInfo.InvariantCulture),
        };
        model.Axes.Add(x);
        var baseline = inMode.FirstOrDefault(p => p.Configuration.IsBaseline && !double.IsNaN(p.RequestsPerSecond));
        var top = inMode.Select(p => p.MaxRequestsPerSecond).Where(v => !double.IsNaN(v)).DefaultIfEmpty(1).Max();
        model.Axes.Add(new LinearAxis
        {
            Position = AxisPosition.Left,
            Title = "requests/sec (median; whiskers: min–max of the rounds)",
            AxisTitleDistance = 12,
            Minimum = 0,
            // Room for the baseline line and the highest whisker, which do not widen the axis by themselves.
            Maximum = top * 1.08,
            MajorGridlineStyle = LineStyle.Dot,
            LabelFormatter = v => v.ToString("#,0", CultureInfo.InvariantCulture),
        });

        foreach (var series in inMode.Where(p => !p.Configuration.IsBaseline).GroupBy(p => p.Configuration.Series))
        {
            var color = s_colors.GetValueOrDefault(series.First().Configuration.Strategy!, OxyColors.Gray);
            var line = new LineSeries
            {
                Title = series.Key,
                Color = color,
                MarkerType = series.First().Configuration.Acceptors == 1 ? MarkerType.Circle : MarkerType.Square,
                MarkerFill = color,
                LineStyle = series.First().Configuration.Acceptors == 1 ? LineStyle.Solid : LineStyle.Dash,
            };
            // Min–max of the rounds as a whisker behind each median.
            var range = new ScatterErrorSeries { MarkerFill = color, ErrorBarColor = color, ErrorBarStopWidth = 3, MarkerSize = 0 };
            foreach (var p in series.OrderBy(p => p.Configuration.Workers).Where(p => !double.IsNaN(p.RequestsPerSecond)))
            {
                line.Points.Add(new DataPoint(position(p.Configuration.Workers), p.RequestsPerSecond));
                range.Points.Add(new ScatterErrorPoint(
                    position(p.Configuration.Workers), (p.MaxRequestsPerSecond + p.MinRequestsPerSecond) / 2, 0, (p.MaxRequestsPerSecond - p.MinRequestsPerSecond) / 2));
            }

            model.Series.Add(range);
            model.Series.Add(line);
        }

        if (baseline is not null)
        {
            model.Annotations.Add(new LineAnnotation
            {
                Type = LineAnnotationType.Horizontal,
                Y = baseline.RequestsPerSecond,
                Color = OxyColors.Black,
                LineStyle = LineStyle.LongDash,
                StrokeThickness = 1.5,
                Text = string.Create(CultureInfo.InvariantCulture, $"Kestrel default transport: {baseline.RequestsPerSecond:#,0} req/s"),
                TextColor = OxyColors.Black,
            });
        }

        using var stream = new MemoryStream();
        new SvgExporter { Width = 1000, Height = 560, UseVerticalTextAlignmentWorkaround = true }.Export(model, stream);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
