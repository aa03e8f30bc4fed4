using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Kestrel.AcceptStrategies.Internal;
using Kestrel.AcceptStrategies.Listeners;
using Kestrel.AcceptStrategies.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kestrel.AcceptStrategies.Tests.Listeners;

/// <summary>A listener whose construction fails half-way closes every descriptor it made (dups, epoll sets, flock files, eventfd).</summary>
[Collection(DescriptorCounting.Name)]
public sealed class ListenerConstructionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("construct-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Constructor_MutexCreateFailsForThirdAcceptor_NoDescriptorLeft(bool flock)
    {
        var lockPath = Path.Combine(_directory, "accept.lock");
        File.WriteAllBytes(lockPath, []);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new AcceptStrategyMetrics(services.GetRequiredService<IMeterFactory>());
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();
        using var flockFactory = new FlockAcceptMutexFactory(lockPath);
        using var factory = new FaultyMutexFactory(failingCreate: 3, inner: flock ? flockFactory.Create : null);

        AcceptStrategyConnectionListener Construct() => new(
            [socket], AcceptStrategy.Serialized, 4, factory, new SocketTransportOptions(), metrics, NullLogger.Instance, NullLoggerFactory.Instance);

        // Once first, so what the runtime opens for code it loads or compiles on first use is open before counting.
        Assert.Throws<InvalidOperationException>(Construct);
        factory.Reset();
        var before = Descriptors();
        var error = Assert.Throws<InvalidOperationException>(Construct);
        var after = Descriptors();

        Assert.Contains("Injected fault", error.Message, StringComparison.Ordinal);
        Assert.True(before.SequenceEqual(after), $"leaked: {string.Join(", ", after.Except(before))}");

        // The caller's socket is still the caller's, and still listening.
        Assert.True(socket.IsBound);
    }

    /// <summary>Every open descriptor of this process with what it points to (but this listing's own), sorted.</summary>
    private static List<string> Descriptors() =>
    [
        .. new DirectoryInfo("/proc/self/fd").GetFileSystemInfos()
            .Select(f => { try { return $"{f.Name} -> {f.LinkTarget}"; } catch (IOException) { return null; } })
            .Where(f => f is not null && !f.Contains("/proc/", StringComparison.Ordinal))
            .Select(f => f!)
            .Order(StringComparer.Ordinal),
    ];
}
