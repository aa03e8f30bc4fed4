namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// The one bound on every wait in the conformance suite. A test that waits for something (a response, a log event, a
/// measurement, a host to start or stop) awaits it through <see cref="OrTimeout(Task, TimeSpan?)"/>, so that a
/// transport that never delivers fails the test with a <see cref="TimeoutException"/> instead of hanging the run.
/// </summary>
public static class Deadline
{
    /// <summary>
    /// Generous on purpose: the suite shares two cores between four transports' hosts, and a passing wait ends as soon
    /// as its event arrives, so the bound only costs time when a test is already failing.
    /// </summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30);

    /// <summary>The task's own outcome, or a <see cref="TimeoutException"/> after <paramref name="limit"/> (default <see cref="Default"/>).</summary>
    public static Task OrTimeout(this Task task, TimeSpan? limit = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.WaitAsync(limit ?? Default);
    }

    /// <inheritdoc cref="OrTimeout(Task, TimeSpan?)"/>
    public static Task<T> OrTimeout<T>(this Task<T> task, TimeSpan? limit = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.WaitAsync(limit ?? Default);
    }

    /// <inheritdoc cref="OrTimeout(Task, TimeSpan?)"/>
    public static Task OrTimeout(this ValueTask task, TimeSpan? limit = null) => task.AsTask().OrTimeout(limit);

    /// <inheritdoc cref="OrTimeout(Task, TimeSpan?)"/>
    public static Task<T> OrTimeout<T>(this ValueTask<T> task, TimeSpan? limit = null) => task.AsTask().OrTimeout(limit);
}
