using System.Text.Json.Nodes;

namespace Kestrel.AcceptStrategies.Tests.Infrastructure;

/// <summary>
/// A private copy of the BenchmarkApp's output directory, so a test can change its appsettings.json while it runs
/// (as an operator edits a deployed app's configuration before SIGHUP). Deleted on dispose.
/// </summary>
internal sealed class AppCopy : IDisposable
{
    private AppCopy(string directory) => Directory = directory;

    public string Directory { get; }

    public string AppPath => Path.Combine(Directory, Path.GetFileName(ChildProcess.BenchmarkAppPath));

    public string SettingsPath => Path.Combine(Directory, "appsettings.json");

    /// <summary>Copies the app and sets its <c>AcceptStrategy</c> section (and any other top-level keys) from <paramref name="settings"/>.</summary>
    public static AppCopy Create(JsonObject settings)
    {
        var source = Path.GetDirectoryName(ChildProcess.BenchmarkAppPath)!;
        var directory = System.IO.Directory.CreateTempSubdirectory("kas-app-").FullName;
        foreach (var file in System.IO.Directory.EnumerateFiles(source))
        {
            File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
        }

        var copy = new AppCopy(directory);
        copy.Update(settings);
        return copy;
    }

    /// <summary>Merges <paramref name="settings"/> into appsettings.json (top-level keys replaced) and writes it atomically.</summary>
    public void Update(JsonObject settings)
    {
        var current = JsonNode.Parse(File.ReadAllText(SettingsPath))!.AsObject();
        foreach (var (key, value) in settings)
        {
            current[key] = value?.DeepClone();
        }

        var temporary = SettingsPath + ".new";
        File.WriteAllText(temporary, current.ToJsonString());
        File.Move(temporary, SettingsPath, overwrite: true);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
