using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Kestrel.AcceptStrategies.Internal;

/// <summary>
/// Chooses which sockets of an <c>SO_REUSEPORT</c> group the kernel gives new connections to: a classic BPF program
/// attached to the group (<c>SO_ATTACH_REUSEPORT_CBPF</c>) returns, per incoming connection, an index into the group's
/// sockets. Without one the kernel hashes over every socket, including those of a worker slot whose worker is not
/// accepting (crashed, in back-off, drained by the pool), whose connections would then wait for nobody.
/// </summary>
/// <remarks>
/// A group's index order is the order its sockets started listening, and closing one moves the last into its place;
/// the supervisor closes no member while it steers (nor binds one while a successor takes the group over), so the
/// indices it counted stay true. The
/// program spreads connections by the packet's flow hash (a random number where the packet has none) over the
/// targets; an index the program returns that is out of range makes the kernel fall back to its own hash.
/// </remarks>
internal static class ReusePortSteering
{
    // Classic BPF opcodes (linux/filter.h) and ancillary loads (SKF_AD_OFF + SKF_AD_RXHASH, + SKF_AD_RANDOM).
    private const ushort LoadAbsoluteWord = 0x20, JumpIfEqual = 0x15, ModuloConstant = 0x94, ReturnConstant = 0x06;
    private const uint FlowHash = 0xFFFFF000 + 32, RandomNumber = 0xFFFFF000 + 56;

    /// <summary>BPF_MAXINSNS: the longest program the kernel accepts.</summary>
    private const int MaxInstructions = 4096;

    private static readonly Lazy<int> s_probe = new(Probe);

    /// <summary>The most sockets one program can choose among.</summary>
    public static int MaxTargets => ((MaxInstructions - 5) / 2) + 1;

    /// <summary>0 when this kernel (and this container's seccomp profile) lets a program steer a group; else the errno.</summary>
    public static int Unavailable => s_probe.Value;

    /// <summary>
    /// The program sending each connection to one of <paramref name="targets"/> (group indices), spread evenly by flow
    /// hash: load the hash (a random number if it is 0), take it modulo the count, map the remainder to its index.
    /// </summary>
    public static Libc.SocketFilter[] Program(IReadOnlyList<int> targets)
    {
        ArgumentOutOfRangeException.ThrowIfZero(targets.Count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(targets.Count, MaxTargets);
        var program = new List<Libc.SocketFilter>(5 + (2 * targets.Count))
        {
            new(LoadAbsoluteWord, 0, 0, FlowHash),
            new(JumpIfEqual, 0, 1, 0),
            new(LoadAbsoluteWord, 0, 0, RandomNumber),
            new(ModuloConstant, 0, 0, (uint)targets.Count),
        };

        for (var i = 0; i < targets.Count - 1; i++)
        {
            program.Add(new(JumpIfEqual, 0, 1, (uint)i));
            program.Add(new(ReturnConstant, 0, 0, (uint)targets[i]));
        }

        program.Add(new(ReturnConstant, 0, 0, (uint)targets[^1]));
        return [.. program];
    }

    /// <summary>Attaches the program for <paramref name="targets"/> to the group <paramref name="member"/> belongs to; 0 or the errno.</summary>
    public static unsafe int Attach(Socket member, IReadOnlyList<int> targets)
    {
        var program = Program(targets);
        fixed (Libc.SocketFilter* filter = program)
        {
            var fprog = new Libc.SocketFilterProgram { Length = (ushort)program.Length, Filter = filter };
            var fd = (int)member.SafeHandle.DangerousGetHandle();
            return Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_ATTACH_REUSEPORT_CBPF, &fprog, (uint)sizeof(Libc.SocketFilterProgram)) == 0
                ? 0
                : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Detaches the group's program (<c>SO_DETACH_REUSEPORT_BPF</c>): the kernel hashes over every socket again; 0 or the errno.</summary>
    public static unsafe int Detach(Socket member)
    {
        var fd = (int)member.SafeHandle.DangerousGetHandle();
        var unused = 0;
        return Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_DETACH_REUSEPORT_BPF, &unused, sizeof(int)) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Whether a program attaches here at all: a throwaway group of one on the loopback address.</summary>
    private static int Probe()
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.SetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_REUSEPORT, BitConverter.GetBytes(1));
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            socket.Listen(1);
            return Attach(socket, [0]);
        }
        catch (SocketException e)
        {
            return e.NativeErrorCode;
        }
    }
}
