#!/usr/bin/env bash
# Native AOT check (issue 10): publish perf/BenchmarkApp with -p:PublishAot=true, fail on any trim/AOT warning
# (IL2xxx/IL3xxx), then smoke-test the binary in worker mode: two workers on loopback answer /whoami, SIGTERM, exit 0;
# and under `ulimit -n 64` the descriptor limit is named at start and in each failed spawn (issue 20).
#
#   eng/aot-check.sh [OUTPUT_DIR]     (default: a temporary directory, removed afterwards)
#
# Needs clang and zlib1g-dev (Debian: apt-get install clang zlib1g-dev); .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in clang curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "aot-check: $tool is not installed (Native AOT links with clang; apt-get install clang zlib1g-dev curl)." >&2; exit 1; }
done

keep=${1:-}
out=${keep:-$(mktemp -d)}
log=$(mktemp)
applog=$(mktemp)
app_pid=
cleanup() {
  [ -n "$app_pid" ] && kill -KILL "$app_pid" 2>/dev/null || true
  rm -f "$log" "$applog"
  [ -z "$keep" ] && rm -rf "$out"
  return 0
}
trap cleanup EXIT

started=$SECONDS
# ILC reports its warnings only when it runs: drop the RID-specific intermediates so a re-run checks again.
rm -rf perf/BenchmarkApp/obj/Release/net10.0/linux-x64
published=0
timeout 900 dotnet publish perf/BenchmarkApp -c Release -p:PublishAot=true -o "$out" >"$log" 2>&1 || published=$?
# TreatWarningsAsErrors turns the analyzers' ones into "error IL...", which also fail the publish: list both spellings.
il=$(grep -E '(warning|error) IL[23][0-9]{3}' "$log" | sort -u || true)
if [ -n "$il" ]; then
  echo "$il" >&2
  echo "aot-check: the Native AOT publish of perf/BenchmarkApp has $(echo "$il" | wc -l) trim/AOT warning(s) (above)." >&2
  exit 1
fi
if [ "$published" != 0 ]; then
  cat "$log" >&2
  echo "aot-check: the Native AOT publish of perf/BenchmarkApp failed with exit code $published (see above)." >&2
  exit 1
fi
echo "aot-check: published $out/BenchmarkApp with no IL2xxx/IL3xxx warning in $((SECONDS - started)) s"

# Smoke: the supervisor re-executes the native binary for its workers (Environment.ProcessPath, /proc/self/cmdline).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$out/BenchmarkApp" --urls="http://127.0.0.1:$port" --WorkerProcesses:Workers=2 >"$applog" 2>&1 &
app_pid=$!
fail() {
  cat "$applog" >&2
  echo "aot-check: $*" >&2
  exit 1
}

for _ in $(seq 1 300); do  # at most ~30 s
  [ "$(grep -c 'is ready after' "$applog" || true)" -ge 2 ] && curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/whoami" 2>/dev/null && break
  kill -0 "$app_pid" 2>/dev/null || fail "the AOT BenchmarkApp exited while starting."
  sleep 0.1
done
[ "$(grep -c 'is ready after' "$applog" || true)" -ge 2 ] || fail "two AOT workers were not ready within 30 s."

workers=$(pgrep -P "$app_pid" | sort | tr '\n' ' ')
seen=
for _ in 1 2 3 4 5 6; do
  # "Worker PID SLOT GENERATION" from a worker; Connection: close so the next request may meet the other one.
  answer=$(curl -fsS -m 5 -H 'Connection: close' "http://127.0.0.1:$port/whoami") || fail "GET /whoami failed."
  pid=$(echo "$answer" | awk '$1 == "Worker" { print $2 }')
  [ -n "$pid" ] && [[ " $workers" == *" $pid "* ]] || fail "/whoami answered '$answer', not one of the workers ($workers)."
  seen="$seen $pid"
done

kill -TERM "$app_pid"
status=0
timeout 30 tail --pid="$app_pid" -f /dev/null || fail "the AOT supervisor did not stop within 30 s of SIGTERM."
wait "$app_pid" || status=$?
app_pid=
[ "$status" = 0 ] || fail "the AOT supervisor exited with $status after SIGTERM, not 0."
ready=$(grep -o 'is ready after [0-9]* ms' "$applog" | awk '{ printf "%s ms ", $4 }')
echo "aot-check: AOT worker mode ok: workers ready after ${ready}; /whoami answered by$(echo "$seen" | tr ' ' '\n' | sort -u | tr '\n' ' '); SIGTERM -> exit 0; $((SECONDS - started)) s in all"

# A descriptor limit too low for the group (issue 20): a Native AOT supervisor opens few descriptors, so it starts
# under `ulimit -n 64` and runs out while it starts 30 workers (two descriptors each). It must warn at start (event 33)
# and say why a spawn failed (event 17), naming the limit and the fix, not a bare errno. With ReusePort the slots
# whose worker could not start keep their sockets: new connections must be steered to the slots that accept.
: >"$applog"
(ulimit -n 64; exec "$out/BenchmarkApp" --urls="http://127.0.0.1:0" --AcceptStrategy:Strategy=ReusePort --AcceptStrategy:Acceptors=1 \
  --WorkerProcesses:Workers=30 --Logging:Console:FormatterName=simple --Logging:Console:FormatterOptions:SingleLine=true) >"$applog" 2>&1 &
app_pid=$!
for _ in $(seq 1 300); do  # at most ~30 s
  grep -q 'Supervisor\[17\]' "$applog" && break
  kill -0 "$app_pid" 2>/dev/null || fail "the AOT supervisor exited under ulimit -n 64."
  sleep 0.1
done
grep 'Supervisor\[33\]' "$applog" | grep -q 'RLIMIT_NOFILE 64' || fail "no start-up warning (event 33) naming RLIMIT_NOFILE 64 under ulimit -n 64."
grep -A1 'Supervisor\[17\]' "$applog" | grep -q 'RLIMIT_NOFILE 64.*ulimit -n' || fail "a worker spawn that ran out of descriptors did not name the limit and the fix (event 17)."
port=$(grep -o 'Now listening on: http://127.0.0.1:[0-9]*' "$applog" | head -1 | grep -o '[0-9]*$')
[ -n "$port" ] || fail "no listening address under ulimit -n 64."
for _ in $(seq 1 100); do grep -q 'is ready after' "$applog" && break; sleep 0.1; done
answered=0
for i in $(seq 1 20); do
  curl -fsS --max-time 2 -H 'Connection: close' "http://127.0.0.1:$port/whoami?i=$i" >/dev/null 2>&1 && answered=$((answered + 1))
done
started_workers=$(grep -c 'is ready after' "$applog" || true)
[ "$answered" = 20 ] || fail "ReusePort under ulimit -n 64: $answered of 20 requests answered within 2 s with $started_workers of 30 workers started (connections stranded on slots without a worker)."
kill -TERM "$app_pid"
timeout 30 tail --pid="$app_pid" -f /dev/null || fail "the AOT supervisor did not stop within 30 s of SIGTERM under ulimit -n 64."
app_pid=
echo "aot-check: under ulimit -n 64 the start-up warning and the spawn failures name the limit and the fix; ReusePort with $started_workers of 30 workers answered 20 of 20 requests within 2 s each"
