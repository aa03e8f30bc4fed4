using Kestrel.AcceptStrategies.Hosting;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Kestrel.AcceptStrategies.WorkerProcesses;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kestrel.AcceptStrategies.Tests.Hosting;

/// <summary>The host's shutdown timeout in worker mode, set by options configuration when the host is built.</summary>
public sealed class HostShutdownTimeoutTests
{
    private static readonly WorkerProcessOptions Settings = new() { Workers = 2, GracefulShutdownTimeout = TimeSpan.FromSeconds(45) };

    [Fact]
    public void Supervisor_OutlastsTheWorkersDrainAndItsKillMargins()
    {
        var host = Configure(WorkerProcessRole.Supervisor, new HostOptions { ShutdownTimeout = TimeSpan.FromSeconds(30) });

        Assert.Equal(TimeSpan.FromSeconds(55), host.ShutdownTimeout);
    }

    [Fact]
    public void Supervisor_LongerTimeoutTheAppSetIsKept()
    {
        var host = Configure(WorkerProcessRole.Supervisor, new HostOptions { ShutdownTimeout = TimeSpan.FromMinutes(5) });

        Assert.Equal(TimeSpan.FromMinutes(5), host.ShutdownTimeout);
    }

    [Fact]
    public void Worker_StopsWithinTheGracefulTimeout()
    {
        var host = Configure(WorkerProcessRole.Worker, new HostOptions { ShutdownTimeout = TimeSpan.FromSeconds(30) });

        Assert.Equal(TimeSpan.FromSeconds(45), host.ShutdownTimeout);
    }

    [Fact]
    public void SingleProcess_Untouched()
    {
        var host = Configure(WorkerProcessRole.SingleProcess, new HostOptions { ShutdownTimeout = TimeSpan.FromSeconds(30) });

        Assert.Equal(TimeSpan.FromSeconds(30), host.ShutdownTimeout);
    }

    [Fact]
    public async Task UseAcceptStrategy_WorkersInCode_HostBuiltWithTheSupervisorsTimeout()
    {
        var app = TestServer.Build(workers: o => (o.Workers, o.GracefulShutdownTimeout) = (2, TimeSpan.FromSeconds(45)));
        await using (app)
        {
            Assert.Equal(TimeSpan.FromSeconds(55), app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout);
        }
    }

    [Fact]
    public void InvalidOptions_UntouchedAndNoException()
    {
        var process = new WorkerProcessInfo(() => throw new OptionsValidationException("WorkerProcesses", typeof(WorkerProcessOptions), ["Workers = -1"]));
        var host = new HostOptions { ShutdownTimeout = TimeSpan.FromSeconds(30) };

        new HostShutdownTimeout(process, Options.Create(Settings)).Configure(host);

        Assert.Equal(TimeSpan.FromSeconds(30), host.ShutdownTimeout);
    }

    private static HostOptions Configure(WorkerProcessRole role, HostOptions host)
    {
        new HostShutdownTimeout(new WorkerProcessInfo(role, role == WorkerProcessRole.Worker ? 0 : -1, 1), Options.Create(Settings)).Configure(host);
        return host;
    }
}
