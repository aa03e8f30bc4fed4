using System.Text.Json.Nodes;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Kestrel.AcceptStrategies.Tests.Connections;

/// <summary>
/// <c>HttpContext.Abort()</c> ends the connection as Kestrel's socket transport does since .NET 9: with a RST, unless
/// the app turned the <c>Microsoft.AspNetCore.Server.Kestrel.FinOnError</c> switch on, and then with a FIN.
/// </summary>
[Collection(ConnectionFaults.Name)]
public sealed class AbortTests
{
    private const string FinOnErrorSwitch = "Microsoft.AspNetCore.Server.Kestrel.FinOnError";

    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public async Task AbortingTheConnection_ByDefault_ClientSeesAReset(AcceptStrategy strategy)
    {
        var connections = new ServerConnections(strategy);
        await using var server = await FaultHost.StartAsync(strategy, connections, app => app.MapGet("/abort", (HttpContext context) => context.Abort()));
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var client = await RawHttpClient.ConnectAsync(server.Port, cts.Token);
        await client.SendAsync("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);

        var end = await client.ReadToEndAsync(cts.Token);
        var onServer = await connections.ForClientAsync(client.Socket.LocalPort(), cts.Token);
        await onServer.Ended.Task.WaitAsync(cts.Token);
        Assert.True(end == "ConnectionReset", $"HttpContext.Abort() under {strategy} ended the connection with {end}, not a reset (ECONNRESET)");
    }

    /// <summary>The switch is read once per process (a static of Kestrel's options), so the app runs as a child process with it in its runtimeconfig.json.</summary>
    [Theory]
    [MemberData(nameof(ConnectionFaults.Strategies), MemberType = typeof(ConnectionFaults))]
    public Task AbortingTheConnection_WithFinOnError_ClientSeesACleanEnd(AcceptStrategy strategy) =>
        AbortWithFinOnErrorAsync(new JsonObject { ["AcceptStrategy"] = new JsonObject { ["Strategy"] = strategy.ToString(), ["Acceptors"] = 2 } }, strategy.ToString());

    /// <summary>The reference: Kestrel's own transport (the app's Baseline, UseSockets untouched) honours the switch.</summary>
    [Fact]
    public Task AbortingTheConnection_WithFinOnError_KestrelSockets_ClientSeesACleanEnd() =>
        AbortWithFinOnErrorAsync(new JsonObject { ["Baseline"] = true }, "Kestrel's socket transport");

    private static async Task AbortWithFinOnErrorAsync(JsonObject settings, string transport)
    {
        settings["Urls"] = "http://127.0.0.1:0";
        using var copy = AppCopy.Create(settings);
        var runtimeConfig = Path.ChangeExtension(copy.AppPath, ".runtimeconfig.json");
        var config = JsonNode.Parse(await File.ReadAllTextAsync(runtimeConfig))!;
        var properties = config["runtimeOptions"]!["configProperties"] ??= new JsonObject();
        properties[FinOnErrorSwitch] = true;
        await File.WriteAllTextAsync(runtimeConfig, config.ToJsonString());

        await using var app = ChildProcess.StartBenchmarkApp("", appPath: copy.AppPath, appLogging: true);
        var address = await app.WaitForListeningAsync();
        using var cts = new CancellationTokenSource(TestServer.Timeout);

        using var client = await RawHttpClient.ConnectAsync(address.Port, cts.Token);
        await client.SendAsync("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n", cts.Token);

        var end = await client.ReadToEndAsync(cts.Token);
        Assert.True(end == "EOF", $"HttpContext.Abort() with {FinOnErrorSwitch} on, under {transport}, ended the connection with {end}, not a FIN (read returning 0)");
    }
}
