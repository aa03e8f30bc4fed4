using System.Net;
using Kestrel.AcceptStrategies;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>A real Kestrel host on 127.0.0.1 with the accept strategy, serving the seed's /foo and a gated /slow.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    public const string Body = "xxxxxxxxxxxx";

    private TestServer(WebApplication app, SlowGate gate)
    {
        App = app;
        Slow = gate;
        Addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToArray();
    }

    public WebApplication App { get; }

    public SlowGate Slow { get; }

    public IReadOnlyList<string> Addresses { get; }

    public Uri BaseAddress => new(Addresses[0]);

    public int Port => BaseAddress.Port;

    public static Task<TestServer> StartAsync(Action<AcceptStrategyOptions>? configure = null, Action<WebApplicationBuilder>? build = null, string[]? args = null)
    {
        var app = Build(configure, build, args);
        return StartAsync(app);
    }

    /// <param name="configure">Transport options in code.</param>
    /// <param name="build">Anything else on the builder, before the library's registration.</param>
    /// <param name="args">Command-line configuration.</param>
    /// <param name="workers">Non-null: the app calls <c>UseWorkerProcesses()</c> too, with this in code.</param>
    public static WebApplication Build(
        Action<AcceptStrategyOptions>? configure = null, Action<WebApplicationBuilder>? build = null, string[]? args = null, Action<WorkerProcessOptions>? workers = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args ?? [], EnvironmentName = Environments.Production });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton<SlowGate>();
        build?.Invoke(builder);
        builder.WebHost.UseAcceptStrategy(configure ?? (_ => { }));
        if (workers is not null)
        {
            builder.WebHost.UseWorkerProcesses(workers);
        }

        var app = builder.Build();
        app.MapGet("/foo", (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain";
            context.Response.ContentLength = Body.Length;
            return context.Response.WriteAsync(Body);
        });
        app.MapGet("/slow", async (HttpContext context, SlowGate gate) =>
        {
            gate.Entered.TrySetResult();
            await gate.Release.Task;
            await context.Response.WriteAsync("slow done");
        });
        return app;
    }

    public static async Task<TestServer> StartAsync(WebApplication app)
    {
        try
        {
            await app.StartAsync().WaitAsync(Timeout);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new TestServer(app, app.Services.GetRequiredService<SlowGate>());
    }

    public AcceptMetrics CollectMetrics() => new(App.Services);

    public async ValueTask DisposeAsync()
    {
        Slow.Release.TrySetResult();
        await App.StopAsync().WaitAsync(Timeout);
        await App.DisposeAsync();
    }

    /// <summary>Names of this process's threads, as the OS reports them.</summary>
    public static IReadOnlyList<string> ThreadNames() =>
        Directory.GetDirectories("/proc/self/task")
            .Select(task => { try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); } catch (IOException) { return ""; } })
            .ToArray();

    /// <summary>
    /// Waits (bounded) until no acceptor thread of <paramref name="port"/> is listed: an acceptor reports its exit just
    /// before its thread ends, and the kernel lists the thread until then, longer on a loaded machine.
    /// </summary>
    public static async Task AssertNoAcceptorThreadsAsync(int port)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (ThreadNames().Any(n => n.StartsWith($"acc:{port}#", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"acceptor threads of port {port} still running after {Timeout}");
            await Task.Delay(10);
        }
    }

    /// <summary>A port that was free a moment ago on both 127.0.0.1 and ::1.</summary>
    public static int FreeLoopbackPort()
    {
        for (var attempt = 0; ; attempt++)
        {
            using var v4 = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            v4.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)v4.LocalEndPoint!).Port;
            using var v6 = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetworkV6, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                v6.Bind(new IPEndPoint(IPAddress.IPv6Loopback, port));
                return port;
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 20)
            {
            }
        }
    }
}
