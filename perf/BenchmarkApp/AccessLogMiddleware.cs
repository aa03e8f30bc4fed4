using System.Globalization;

namespace BenchmarkApp;

/// <summary>
/// The seed's <c>enable 'AccessLog', logger => sub { }</c>: the combined-format line is built for every request and
/// handed to a logger that drops it, so the benchmark pays for formatting as a real access log does.
/// </summary>
internal sealed class AccessLogMiddleware(RequestDelegate next)
{
    private static readonly Action<string> Sink = static _ => { };

    public async Task InvokeAsync(HttpContext context)
    {
        await next(context);

        var request = context.Request;
        Sink(string.Create(CultureInfo.InvariantCulture,
            $"{context.Connection.RemoteIpAddress} - - [{DateTimeOffset.UtcNow:dd/MMM/yyyy:HH:mm:ss zzz}] \"{request.Method} {request.Path}{request.QueryString} {request.Protocol}\" {context.Response.StatusCode} {context.Response.ContentLength} \"{request.Headers.Referer}\" \"{request.Headers.UserAgent}\""));
    }
}
