using System.Text.RegularExpressions;
using Kestrel.AcceptStrategies.Tests.Infrastructure;

namespace Kestrel.AcceptStrategies.Tests;

/// <summary>
/// The library's namespaces depend on each other one way. Read from its sources: the edges a file
/// makes by its using lines, qualified names and the names of types declared in another of its namespaces.
/// </summary>
public sealed partial class NamespaceLayoutTests
{
    private const string Root = "Kestrel.AcceptStrategies";

    [Fact]
    public void No_namespace_depends_on_itself_through_others()
    {
        var edges = Edges();
        var cycles = new List<string>();
        foreach (var (from, to) in edges.Keys)
        {
            if (Path(edges, to, from) is { } back)
            {
                cycles.Add($"{from} -> {string.Join(" -> ", back)} (first edge from {string.Join(", ", edges[(from, to)].Take(3))})");
            }
        }

        Assert.True(cycles.Count == 0, "Namespace cycles:\n" + string.Join("\n", cycles.Distinct()));
    }

    [Theory]
    [InlineData("Internal", "Connections|Listeners|Protocol|Supervisor|Worker|Hosting")]
    [InlineData("Connections", "Listeners|Protocol|Supervisor|Worker|Hosting")]
    [InlineData("Listeners", "Protocol|Supervisor|Worker|Hosting")]
    [InlineData("Protocol", "Connections|Listeners|Supervisor|Worker|Hosting")]
    [InlineData("Worker", "Supervisor|Hosting")]
    [InlineData("Supervisor", "Worker|Hosting")]
    public void Lower_layers_know_nothing_of_higher_ones(string layer, string higher)
    {
        var forbidden = higher.Split('|');
        var wrong = Edges()
            .Where(e => Layer(e.Key.From) == layer && forbidden.Contains(Layer(e.Key.To)))
            .Select(e => $"{e.Key.From} -> {e.Key.To}: {string.Join(", ", e.Value.Take(3))}")
            .ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    private static string Layer(string ns) => ns == Root ? "" : ns.StartsWith(Root + ".", StringComparison.Ordinal) ? ns[(Root.Length + 1)..].Split('.')[0] : ns;

    private static List<string>? Path(Dictionary<(string From, string To), List<string>> edges, string from, string to)
    {
        var queue = new Queue<List<string>>([[from]]);
        var seen = new HashSet<string> { from };
        while (queue.TryDequeue(out var path))
        {
            if (path[^1] == to)
            {
                return path;
            }

            foreach (var next in edges.Keys.Where(e => e.From == path[^1] && seen.Add(e.To)).Select(e => e.To))
            {
                queue.Enqueue([.. path, next]);
            }
        }

        return null;
    }

    /// <summary>(from, to) namespace edges of the library, each with the files (and names) that make it.</summary>
    private static Dictionary<(string From, string To), List<string>> Edges()
    {
        var src = BuildPaths.Of("LibrarySourcePath");
        var files = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(f => (Path: System.IO.Path.GetRelativePath(src, f), Code: Strip(File.ReadAllText(f))))
            .Select(f => (f.Path, f.Code, Namespace: NamespaceLine().Match(f.Code) is { Success: true } m ? m.Groups[1].Value : ""))
            .ToList();
        Assert.True(files.Count > 50, $"Found {files.Count} source files under {src}.");

        var declared = files
            .SelectMany(f => TypeDeclaration().Matches(f.Code).Select(m => (Type: m.Groups[1].Value, f.Namespace)))
            .GroupBy(d => d.Type)
            .Where(g => g.Select(d => d.Namespace).Distinct().Count() == 1)
            .ToDictionary(g => g.Key, g => g.First().Namespace);
        var namespaces = files.Select(f => f.Namespace).Where(n => n.StartsWith(Root, StringComparison.Ordinal)).ToHashSet();

        var edges = new Dictionary<(string, string), List<string>>();
        void Add(string from, string to, string why)
        {
            if (from != to && from.Length > 0)
            {
                (edges.TryGetValue((from, to), out var list) ? list : edges[(from, to)] = []).Add(why);
            }
        }

        foreach (var (path, code, ns) in files)
        {
            foreach (Match u in UsingLine().Matches(code))
            {
                if (namespaces.Contains(u.Groups[1].Value))
                {
                    Add(ns, u.Groups[1].Value, path + " (using)");
                }
            }

            var body = UsingLine().Replace(NamespaceLine().Replace(code, ""), "");
            foreach (Match q in QualifiedName().Matches(body))
            {
                var target = namespaces.Where(n => q.Value == n || q.Value.StartsWith(n + ".", StringComparison.Ordinal)).MaxBy(n => n.Length);
                if (target is not null)
                {
                    Add(ns, target, $"{path} {q.Value}");
                }
            }

            // Worker.WorkerIdentity from inside Kestrel.AcceptStrategies.*: a type qualified by a sibling namespace's last part.
            foreach (Match q in SiblingQualifiedName().Matches(body))
            {
                if (declared.TryGetValue(q.Groups[2].Value, out var target) && target.EndsWith("." + q.Groups[1].Value, StringComparison.Ordinal))
                {
                    Add(ns, target, $"{path} {q.Value}");
                }
            }

            // A name after '.' is a member, and so is a name the file declares as one (a property named like a type).
            var members = MemberDeclaration().Matches(body).Select(m => m.Groups[1].Value).ToHashSet();
            foreach (var name in SimpleName().Matches(body).Select(m => m.Groups[1].Value).Distinct().Where(n => !members.Contains(n)))
            {
                // A type of an enclosing namespace needs no using and makes no cycle worth the name; others are edges.
                if (declared.TryGetValue(name, out var target) && target != ns && !ns.StartsWith(target + ".", StringComparison.Ordinal))
                {
                    Add(ns, target, $"{path} {name}");
                }
            }
        }

        return edges;
    }

    private static string Strip(string code)
    {
        code = Comment().Replace(code, "");
        return StringLiteral().Replace(code, "\"\"");
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comment();

    [GeneratedRegex("\"\"\"(?:.|\\n)*?\"\"\"|@\"(?:[^\"]|\"\")*\"|\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])'")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^\s*(?:global\s+)?using\s+(?:static\s+)?(?:\w+\s*=\s*)?([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingLine();

    // Top-level types only: with file-scoped namespaces they start at column 0; nested ones are reached through their parent.
    [GeneratedRegex(@"^(?:(?:public|internal|static|sealed|abstract|partial|readonly|ref|unsafe|file)\s+)*(?:class|struct|interface|enum|record(?:\s+struct|\s+class)?)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"^\s*(?:\[[^\]]*\]\s*)*(?:(?:public|private|internal|protected|static|readonly|const|required|override|virtual|sealed|new|volatile)\s+)+[\w<>\[\]?,. ()]+?\s+(\w+)\s*(?:\{|=>|=|;|\()", RegexOptions.Multiline)]
    private static partial Regex MemberDeclaration();

    [GeneratedRegex(@"\bKestrel\.AcceptStrategies(?:\.\w+)*")]
    private static partial Regex QualifiedName();

    [GeneratedRegex(@"(?<![\w.])([A-Z]\w*)\.([A-Z]\w*)\b")]
    private static partial Regex SiblingQualifiedName();

    [GeneratedRegex(@"(?<![\w.])([A-Z]\w*)\b")]
    private static partial Regex SimpleName();
}
