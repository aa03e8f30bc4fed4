using BenchmarkApp;

// The seed's hello-world (../shared/seeds): GET /foo reads every value of ?foo and answers a 12-byte text/plain body
// behind a no-op access log. --Baseline=true runs Kestrel's default transport untouched, as the comparison point.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    EnvironmentName = Environments.Production,
    // appsettings.json (quiet logging) must be found wherever the app is started from.
    ContentRootPath = AppContext.BaseDirectory,
});

if (!builder.Configuration.GetValue<bool>("Baseline"))
{
    builder.WebHost.UseAcceptStrategy();
}

var app = builder.Build();

byte[] body = "xxxxxxxxxxxx"u8.ToArray();

app.UseMiddleware<AccessLogMiddleware>();
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

app.Run();
