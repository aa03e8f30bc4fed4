using System.Globalization;
using BenchmarkApp;
using Kestrel.AcceptStrategies.WorkerProcesses;

// The seed's hello-world (../shared/seeds): GET /foo reads every value of ?foo and answers a 12-byte text/plain body
// behind a no-op access log. --Baseline=true runs Kestrel's default transport untouched, as the comparison point.
var unknown = KnownArguments.FindUnknown(args);
if (unknown.Count > 0)
{
    await Console.Error.WriteLineAsync(
        $"BenchmarkApp: unknown argument(s): {string.Join(", ", unknown)}. Known: {KnownArguments.Describe()}.");
    return 2;
}

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    EnvironmentName = Environments.Production,
    // appsettings.json (quiet logging) must be found wherever the app is started from.
    ContentRootPath = AppContext.BaseDirectory,
});

var baseline = builder.Configuration.GetValue<bool>("Baseline");
if (!baseline)
{
    builder.WebHost.UseWorkerProcesses();
}

// Kestrel's socket transport setting, set as an app sets it; the event loops read it too (docs/connections.md).
if (builder.Configuration.GetValue<bool>("UnsafePreferInlineScheduling"))
{
    builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
}

if (builder.Configuration.GetValue<bool>("ChildFdProbe"))
{
    builder.Services.AddHostedService<ChildFdProbe>();
}

// The baseline has no accept-strategy Meter to report.
if (!baseline && !string.IsNullOrEmpty(builder.Configuration["MeterSnapshotPath"]))
{
    builder.Services.AddHostedService<MeterSnapshotWriter>();
}

var app = builder.Build();

// Invalid options are the library's to report when the host starts: one block, exit code 78.
var process = baseline ? null : app.Services.GetRequiredService<WorkerProcessInfo>();

// Test hooks: a worker that dies while starting (every one, or those of one slot), to exercise the supervisor's back-off.
if (process?.Role == WorkerProcessRole.Worker && app.Configuration.GetValue<bool>("CrashWorkerAtStart"))
{
    throw new InvalidOperationException("CrashWorkerAtStart is set: this worker fails on purpose.");
}

if (process?.Role == WorkerProcessRole.Worker && app.Configuration.GetValue<int?>("CrashWorkerInSlot") == process.Slot)
{
    throw new InvalidOperationException($"CrashWorkerInSlot is {process.Slot}: this worker fails on purpose.");
}

byte[] body = "xxxxxxxxxxxx"u8.ToArray();

app.UseMiddleware<AccessLogMiddleware>();

// Test hook: a modelled leak, for MaxWorkerMemoryMegabytes.
var retainBytes = app.Configuration.GetValue<int>("RetainBytesPerRequest");
if (retainBytes < 0)
{
    await Console.Error.WriteLineAsync($"BenchmarkApp: RetainBytesPerRequest = {retainBytes} is negative.");
    return 2;
}

if (retainBytes > 0)
{
    app.Use((context, next) =>
    {
        RetainedBytes.Retain(retainBytes);
        return next(context);
    });
}
app.MapGet("/foo", (HttpContext context) =>
{
    var foo = context.Request.Query["foo"];
    var seen = 0;
    foreach (var value in foo)
    {
        seen += value?.Length ?? 0;
    }

    context.Response.StatusCode = 200;
    context.Response.ContentType = "text/plain";
    context.Response.ContentLength = body.Length;
    return context.Response.Body.WriteAsync(body).AsTask();
});

// Which process answered: "<role> <pid> <slot> <generation>".
app.MapGet("/whoami", () => string.Create(
    CultureInfo.InvariantCulture,
    $"{process?.Role.ToString() ?? "Baseline"} {Environment.ProcessId} {process?.Slot ?? -1} {process?.Generation ?? 0}"));

// A variable as native code and native children see it (libc getenv), not .NET's copy of the environment.
app.MapGet("/native-env", (string name) => NativeEnvironment.Describe(name));

// A request that takes ?ms= milliseconds (at most 30 s), for graceful-shutdown checks.
app.MapGet("/slow", async (int ms, CancellationToken aborted) =>
{
    if (ms >= 1000)
    {
        Console.WriteLine($"slow: started in {Environment.ProcessId} for {ms} ms");
    }

    await Task.Delay(Math.Clamp(ms, 0, 30_000), aborted);
    return "done";
});

// Test hook: the application aborts the connection (HttpContext.Abort), for how the transport ends it (RST, or FIN
// under the Microsoft.AspNetCore.Server.Kestrel.FinOnError switch).
app.MapGet("/abort", (HttpContext context) => context.Abort());

await app.RunAsync();
return 0;
