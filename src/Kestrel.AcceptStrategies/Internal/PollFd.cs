using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary><c>struct pollfd</c> from <c>poll.h</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}
