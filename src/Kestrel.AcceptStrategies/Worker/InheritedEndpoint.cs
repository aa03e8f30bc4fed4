namespace Kestrel.AcceptStrategies.Worker;

/// <summary>
/// What a worker inherited for one binding of an endpoint: the listening sockets, and the endpoint's accept lock file
/// (Serialized), open and unlinked. Each acceptor opens <c>/proc/self/fd/N</c> of the lock for an open file
/// description, and so a flock, of its own.
/// </summary>
internal sealed record InheritedEndpoint(int[] Fds, int? LockFd);
