using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Kestrel.AcceptStrategies.Supervisor.Status;

/// <summary>The status view as JSON, written by hand with <see cref="Utf8JsonWriter"/> (no reflection: the library is AOT-safe).</summary>
internal static class StatusJson
{
    public static byte[] Write(StatusSnapshot status)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("pid", status.Pid);
            json.WriteString("strategy", status.Strategy);
            json.WriteStartArray("endpoints");
            foreach (var endpoint in status.Endpoints)
            {
                json.WriteStringValue(endpoint);
            }

            json.WriteEndArray();
            json.WriteString("startedAt", Iso(status.StartedAt));
            json.WriteStartObject("restarts");
            foreach (var (reason, count) in status.Restarts)
            {
                json.WriteNumber(reason, count);
            }

            json.WriteEndObject();
            json.WriteStartArray("workers");
            foreach (var worker in status.Workers)
            {
                Write(json, worker);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>ISO-8601 in UTC to the millisecond, as <c>date -u -Iseconds</c> users expect (Z, not +00:00).</summary>
    public static string Iso(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static void Write(Utf8JsonWriter json, WorkerStatus worker)
    {
        json.WriteStartObject();
        json.WriteNumber("pid", worker.Pid);
        json.WriteNumber("slot", worker.Slot);
        json.WriteNumber("generation", worker.Generation);
        json.WriteString("state", worker.State);
        json.WriteNumber("requests", worker.Requests);
        json.WriteNumber("connections", worker.Connections);
        json.WriteNumber("inFlight", worker.InFlight);
        if (worker.RssBytes is { } rss)
        {
            json.WriteNumber("rssBytes", rss);
        }
        else
        {
            json.WriteNull("rssBytes");
        }

        json.WriteString("startedAt", Iso(worker.StartedAt));
        json.WriteNumber("budget", worker.Budget);
        json.WriteStartArray("accepted");
        foreach (var accepted in worker.Accepted)
        {
            json.WriteNumberValue(accepted);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }
}
