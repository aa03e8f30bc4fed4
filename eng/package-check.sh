#!/usr/bin/env bash
# The package as a user gets it: packs Kestrel.AcceptStrategies the way CI publishes it, adds it to fresh
# `dotnet new web` apps through a real PackageReference (a folder source beside the machine's own NuGet sources, and a
# NuGet cache of its own so an older cached copy of the same version is never used), and checks:
#   a. referencing the package writes nothing into the app's runtimeconfig.json, and says nothing;
#      an unknown AcceptStrategyRuntimeProfile value is a build error naming the valid ones;
#   b. <AcceptStrategyRuntimeProfile>Tuned</…> writes the spin limit (and the profile's marker) with a build message,
#      and a runtimeconfig.template.json that sets the spin limit wins, with a message saying so;
#   c. the package carries README.md, the XML docs and the targets, was built deterministically (CI path map), and a
#      .snupkg with the PDB sits beside it;
#   d. the README's one line, `if (OperatingSystem.IsLinux()) builder.WebHost.UseAcceptStrategy();`, pasted into the
#      stock Program.cs builds with 0 warnings (so does the unguarded call under [assembly: SupportedOSPlatform("linux")]),
#      and the app serves a request.
# Usage: eng/package-check.sh   (after `dotnet restore Kestrel.AcceptStrategies.sln`; about a minute on two cores)
# PACKAGE_CHECK_KEEP=1 keeps the temporary folder for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

work=$(mktemp -d)
app_pid=
cleanup() {
  if [ -n "$app_pid" ]; then kill "$app_pid" 2>/dev/null || true; fi
  if [ "${PACKAGE_CHECK_KEEP:-}" = 1 ]; then echo "package-check: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
ok() { echo "package-check: ok: $*"; }

# --- Pack ------------------------------------------------------------------------------------------------------------
# ContinuousIntegrationBuild maps source paths to /_/. Its own output folders (bin/ci-pack, obj/ci-pack): toggling the
# property does not make MSBuild recompile, so sharing bin/Release would leave one build's path map in the other's.
project=src/Kestrel.AcceptStrategies/Kestrel.AcceptStrategies.csproj
restore_flag=--no-restore
[ -f src/Kestrel.AcceptStrategies/obj/project.assets.json ] || restore_flag=
dotnet pack "$project" -c Release $restore_flag -o "$work/feed" -p:ContinuousIntegrationBuild=true \
  -p:IntermediateOutputPath=obj/ci-pack/ -p:OutputPath=bin/ci-pack/ >"$work/pack.log" 2>&1 \
  || { cat "$work/pack.log"; fail "dotnet pack"; }
grep -E ": warning " "$work/pack.log" && fail "dotnet pack warned"
nupkg=$(ls "$work"/feed/Kestrel.AcceptStrategies.*.nupkg)
version=$(basename "$nupkg" .nupkg); version=${version#Kestrel.AcceptStrategies.}
ok "packed $(basename "$nupkg")"

# --- c. What the package carries ---------------------------------------------------------------------------------------
mkdir "$work/pkg" "$work/symbols"
(cd "$work/pkg" && unzip -q "$nupkg")
for f in README.md lib/net10.0/Kestrel.AcceptStrategies.dll lib/net10.0/Kestrel.AcceptStrategies.xml \
         buildTransitive/Kestrel.AcceptStrategies.targets; do
  [ -f "$work/pkg/$f" ] || fail "$f is missing from $(basename "$nupkg")"
done
nuspec="$work/pkg/Kestrel.AcceptStrategies.nuspec"
grep -q '<license type="expression">MIT</license>' "$nuspec" || fail "no MIT license expression in the nuspec"
grep -q '<readme>README.md</readme>' "$nuspec" || fail "the nuspec names no readme"
snupkg="${nupkg%.nupkg}.snupkg"
[ -f "$snupkg" ] || fail "no symbols package beside $(basename "$nupkg")"
(cd "$work/symbols" && unzip -q "$snupkg")
[ -f "$work/symbols/lib/net10.0/Kestrel.AcceptStrategies.pdb" ] || fail "the .snupkg has no PDB"
# The DLL names its PDB by path: /_/… under the CI path map, never this machine's checkout.
dll="$work/pkg/lib/net10.0/Kestrel.AcceptStrategies.dll"
grep -aq "/_/src/Kestrel.AcceptStrategies/" "$dll" || fail "the DLL was not built with ContinuousIntegrationBuild (no /_/ path)"
grep -aqF "$repo/" "$dll" && fail "the DLL carries this machine's path $repo"
# Source Link needs a git remote the SDK knows (GitHub, GitLab, Azure Repos, Bitbucket); without one there is none.
if grep -aq '{"documents":' "$work/symbols/lib/net10.0/Kestrel.AcceptStrategies.pdb"; then
  sourcelink="Source Link: $(grep -ao '{"documents":[^}]*}' "$work/symbols/lib/net10.0/Kestrel.AcceptStrategies.pdb" | head -1)"
else
  sourcelink="Source Link: none in the PDB (no git remote with a known host: '$(git remote get-url origin 2>/dev/null || echo none)')"
fi
repository=$(grep -o '<repository [^>]*>' "$nuspec" || echo "no <repository> element")
ok "package: README.md, XML docs, buildTransitive targets, MIT, deterministic paths, $(basename "$snupkg") with the PDB"
echo "package-check: $sourcelink; nuspec: $repository"

# --- The apps --------------------------------------------------------------------------------------------------------
# The machine's enabled sources serve everything but this package; the folder serves only this package.
mapfile -t sources < <(cd "$work" && dotnet nuget list source --format detailed \
  | sed -nE 's/^ *[0-9]+\. +(.*) \[Enabled\]$/\1/p')
apps="$work/apps"
mkdir "$apps"
{
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo '<configuration>'
  echo "  <packageSources><add key=\"package-check\" value=\"$work/feed\" /></packageSources>"
  echo '  <packageSourceMapping>'
  echo '    <packageSource key="package-check"><package pattern="Kestrel.AcceptStrategies" /></packageSource>'
  for s in "${sources[@]}"; do
    s=${s//&/&amp;}; s=${s//\"/&quot;}; s=${s//</&lt;}
    echo "    <packageSource key=\"$s\"><package pattern=\"*\" /></packageSource>"
  done
  echo '  </packageSourceMapping>'
  echo '</configuration>'
} >"$apps/nuget.config"
export NUGET_PACKAGES="$work/nuget-packages"

cd "$apps"
for app in Plain Tuned Stock; do
  dotnet new web -o "$app" --no-restore >/dev/null
  dotnet add "$app" package Kestrel.AcceptStrategies --version "$version" --no-restore >/dev/null
done
sed -i 's|<ImplicitUsings>enable</ImplicitUsings>|&\n    <AcceptStrategyRuntimeProfile>Tuned</AcceptStrategyRuntimeProfile>|' Tuned/Tuned.csproj
grep -q '<AcceptStrategyRuntimeProfile>Tuned' Tuned/Tuned.csproj || fail "could not opt Tuned/Tuned.csproj in"
dotnet new sln -n Apps >/dev/null
dotnet sln Apps.slnx add Plain/Plain.csproj Tuned/Tuned.csproj Stock/Stock.csproj >/dev/null
dotnet restore Apps.slnx >"$work/restore.log" 2>&1 || { cat "$work/restore.log"; fail "restore of the apps"; }
[ -f "$NUGET_PACKAGES/kestrel.acceptstrategies/$version/kestrel.acceptstrategies.nuspec" ] \
  || fail "restore did not take Kestrel.AcceptStrategies $version from the packed folder"
for app in Plain Tuned Stock; do
  grep -q "buildTransitive/Kestrel.AcceptStrategies.targets" "$app/obj/$app.csproj.nuget.g.targets" \
    || fail "$app does not import the package's buildTransitive targets"
done

# build APP LOG [ARGS...]: a user's `dotnet build`, with the classic console logger so the output can be read here.
build() { local app=$1 log=$2; shift 2; dotnet build "$app" --no-restore -tl:off "$@" >"$log" 2>&1; }
warnings() { grep -E ": warning [A-Z]+[0-9]+:" "$1" | sed 's/^ *//' | sort -u; }
# The property's line in APP's runtimeconfig.json, trimmed ("" when absent).
config_line() { grep -h "\"$2\"" "$1"/bin/Debug/net10.0/*.runtimeconfig.json | sed 's/^ *//; s/,$//' || true; }
spin_in() { config_line "$1" System.Threading.ThreadPool.UnfairSemaphoreSpinLimit; }
marker_in() { config_line "$1" Kestrel.AcceptStrategies.RuntimeProfile; }

# --- a. Referencing the package changes nothing ------------------------------------------------------------------------
build Plain "$work/plain.log" || { cat "$work/plain.log"; fail "Plain does not build"; }
ls Plain/bin/Debug/net10.0/Plain.runtimeconfig.json >/dev/null || fail "Plain wrote no runtimeconfig.json"
[ -z "$(grep -rl UnfairSemaphoreSpinLimit Plain/bin --include='*.runtimeconfig.json')" ] \
  || fail "Plain's runtimeconfig.json has UnfairSemaphoreSpinLimit without opting in"
[ -z "$(marker_in Plain)" ] || fail "Plain's runtimeconfig.json has the profile's marker"
grep -q "Kestrel.AcceptStrategies:" "$work/plain.log" && fail "Plain's build printed the profile's message"
[ -z "$(warnings "$work/plain.log")" ] || { warnings "$work/plain.log"; fail "Plain warns"; }
ok "a. without opting in: no UnfairSemaphoreSpinLimit in Plain/bin/**/*.runtimeconfig.json, no message, 0 warnings"

if build Plain "$work/typo.log" -p:AcceptStrategyRuntimeProfile=Tunned; then fail "AcceptStrategyRuntimeProfile=Tunned built"; fi
grep -q "error KAS0001: AcceptStrategyRuntimeProfile is 'Tunned'; valid values are Tuned" "$work/typo.log" \
  || { cat "$work/typo.log"; fail "AcceptStrategyRuntimeProfile=Tunned failed without naming the valid values"; }
ok "a. AcceptStrategyRuntimeProfile=Tunned: $(grep -om1 "error KAS0001:.*(writes nothing)\." "$work/typo.log")"

# --- b. Opting in --------------------------------------------------------------------------------------------------------
build Tuned "$work/tuned.log" || { cat "$work/tuned.log"; fail "Tuned does not build"; }
grep -q '"System.Threading.ThreadPool.UnfairSemaphoreSpinLimit": 0' Tuned/bin/Debug/net10.0/Tuned.runtimeconfig.json \
  || fail "Tuned's runtimeconfig.json lacks UnfairSemaphoreSpinLimit = 0"
grep -q '"Kestrel.AcceptStrategies.RuntimeProfile": "Tuned"' Tuned/bin/Debug/net10.0/Tuned.runtimeconfig.json \
  || fail "Tuned's runtimeconfig.json lacks the profile's marker"
message=$(grep -om1 "Kestrel.AcceptStrategies: AcceptStrategyRuntimeProfile=Tuned writes .*" "$work/tuned.log") \
  || { cat "$work/tuned.log"; fail "Tuned's build printed no message"; }
[ -z "$(warnings "$work/tuned.log")" ] || { warnings "$work/tuned.log"; fail "Tuned warns"; }
ok "b. opted in: Tuned.runtimeconfig.json has $(spin_in Tuned) and $(marker_in Tuned); the build says:"
echo "     $message"

printf '{ "configProperties": { "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit": 20 } }\n' >Tuned/runtimeconfig.template.json
build Tuned "$work/tuned-own.log" || { cat "$work/tuned-own.log"; fail "Tuned with its own template does not build"; }
grep -q '"System.Threading.ThreadPool.UnfairSemaphoreSpinLimit": 20' Tuned/bin/Debug/net10.0/Tuned.runtimeconfig.json \
  || fail "the project's runtimeconfig.template.json did not win"
[ -z "$(marker_in Tuned)" ] || fail "the marker was written though the project's own value won"
message=$(grep -om1 "Kestrel.AcceptStrategies: AcceptStrategyRuntimeProfile=Tuned leaves .*" "$work/tuned-own.log") \
  || { cat "$work/tuned-own.log"; fail "no message that the project's own setting was kept"; }
ok "b. the project's runtimeconfig.template.json wins ($(spin_in Tuned), no marker); the build says:"
echo "     $message"

# --- d. The README's line, pasted ----------------------------------------------------------------------------------------
program=Stock/Program.cs
stock=$(cat "$program")
# The template writes CRLF line ends; the pasted line goes after the CreateBuilder line, as a user would put it.
paste_line() {
  printf '%s\n' "$stock" | sed "/WebApplication.CreateBuilder(args);/a $1" >"$program"
  grep -qF "$1" "$program" || fail "could not paste '$1' into $program"
}

paste_line 'if (OperatingSystem.IsLinux()) builder.WebHost.UseAcceptStrategy();'
build Stock "$work/stock.log" || { cat "$work/stock.log"; fail "Stock does not build"; }
[ -z "$(warnings "$work/stock.log")" ] || { warnings "$work/stock.log"; fail "the guarded call warns"; }
ok "d. 'if (OperatingSystem.IsLinux()) builder.WebHost.UseAcceptStrategy();': 0 warnings"

# It serves: the stock app on a port the kernel picks, through the package's transport.
: >"$work/stock-run.log"
dotnet Stock/bin/Debug/net10.0/Stock.dll --urls http://127.0.0.1:0 >"$work/stock-run.log" 2>&1 &
app_pid=$!
url=
for _ in $(seq 300); do
  url=$(grep -om1 "Now listening on: http://127.0.0.1:[0-9]*" "$work/stock-run.log" | sed 's/Now listening on: //') || true
  [ -n "$url" ] && break
  kill -0 "$app_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/stock-run.log"; fail "the stock app with UseAcceptStrategy() did not start listening"; }
body=$(curl -sS --max-time 10 "$url/") || fail "no answer from $url/"
[ "$body" = "Hello World!" ] || fail "unexpected answer from $url/: $body"
kill -TERM "$app_pid"; wait "$app_pid" || true; app_pid=
ok "d. the stock app answered '$body' on $url"

paste_line 'builder.WebHost.UseAcceptStrategy();'
sed -i '1i [assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]' "$program"
build Stock "$work/stock-linux.log" || { cat "$work/stock-linux.log"; fail "Stock (Linux-only) does not build"; }
[ -z "$(warnings "$work/stock-linux.log")" ] || { warnings "$work/stock-linux.log"; fail "the unguarded call in a Linux-only app warns"; }
ok "d. [assembly: SupportedOSPlatform(\"linux\")] and the unguarded call: 0 warnings"

# For the record: the unguarded call in a stock app, which may run on any OS.
paste_line 'builder.WebHost.UseAcceptStrategy();'
build Stock "$work/stock-bare.log" || { cat "$work/stock-bare.log"; fail "Stock (unguarded) does not build"; }
echo "package-check: note: the unguarded call in the stock app gives $(warnings "$work/stock-bare.log" | grep -c CA1416 || true) CA1416 warning(s):"
warnings "$work/stock-bare.log" | sed 's/^/     /'

echo "package-check: all checks passed for Kestrel.AcceptStrategies $version"
