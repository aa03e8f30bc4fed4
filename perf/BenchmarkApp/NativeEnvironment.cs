using System.Runtime.InteropServices;

namespace BenchmarkApp;

/// <summary>
/// Test hook (GET /native-env?name=...): the variable as libc's <c>getenv(3)</c> sees it, which is what a child started
/// with <c>system(3)</c> or any native code inherits; .NET's own environment is a separate copy.
/// </summary>
internal static class NativeEnvironment
{
    public static string Describe(string name) =>
        Marshal.PtrToStringUTF8(GetEnv(name)) is { } value ? $"{name}={value}" : $"{name} unset";

#pragma warning disable SYSLIB1054 // DllImport: this app compiles without unsafe code, which LibraryImport needs.
    [DllImport("libc", EntryPoint = "getenv")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
#pragma warning restore SYSLIB1054
}
