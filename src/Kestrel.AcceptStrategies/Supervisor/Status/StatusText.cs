using System.Globalization;
using System.Text;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>The status view as a short table for people (<c>?format=text</c>): the same facts as the JSON.</summary>
internal static class StatusText
{
    public static string Write(StatusSnapshot status)
    {
        var text = new StringBuilder();
        var restarts = status.Restarts.Where(r => r.Value > 0).Select(r => $"{r.Key} {r.Value}").ToList();
        text.Append(CultureInfo.InvariantCulture, $"supervisor {status.Pid}, {status.Strategy} on {string.Join(", ", status.Endpoints)}, started {Time(status.StartedAt)}\n");
        text.Append(CultureInfo.InvariantCulture, $"{status.Workers.Count} worker(s); restarts: {(restarts.Count == 0 ? "none" : string.Join(", ", restarts))}\n");
        text.Append("     pid slot  gen state     requests  conns  in-flight  rss MB  started               budget  accepted\n");
        foreach (var w in status.Workers)
        {
            var rss = w.RssBytes is { } bytes ? (bytes / (1024.0 * 1024.0)).ToString("0.0", CultureInfo.InvariantCulture) : "-";
            var budget = w.Budget > 0 ? w.Budget.ToString(CultureInfo.InvariantCulture) : "-";
            var accepted = w.Accepted.Count == 0 ? "-" : string.Join(",", w.Accepted);
            text.Append(CultureInfo.InvariantCulture, $" {w.Pid,7} {w.Slot,4} {w.Generation,4} {w.State,-8} {w.Requests,9} {w.Connections,6} {w.InFlight,10} {rss,7}  {Time(w.StartedAt)} {budget,7}  {accepted}\n");
        }

        return text.ToString();
    }

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
