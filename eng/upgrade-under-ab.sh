#!/bin/bash
# Script, not tested (the test suite covers SIGUSR2 with its own load: SupervisorUpgradeTests): a hot upgrade under ab.
#
# Starts BenchmarkApp with 4 workers on 127.0.0.1:PORT with STRATEGY, warms it (40,000 requests), then runs
# ab -c 30 -n 60000 (one connection per request) and sends the supervisor SIGUSR2 two seconds in. Prints ab's
# counts (every failed request counts) and whether the old supervisor is gone; stops both supervisors at the end.
#
#   eng/upgrade-under-ab.sh [STRATEGY] [PORT]     (default: ReusePort 18480)
set -euo pipefail
cd "$(dirname "$0")/.."
app=perf/BenchmarkApp/bin/Release/net10.0/BenchmarkApp
strategy=${1:-ReusePort}
port=${2:-18480}
log=$(mktemp)
"$app" --urls="http://127.0.0.1:$port" --AcceptStrategy:Strategy="$strategy" --WorkerProcesses:Workers=4 >"$log" 2>&1 &
old=$!
successor=
cleanup() {
  kill -TERM "$old" ${successor:+"$successor"} 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/foo?foo=1" >/dev/null && break; sleep 0.1; done
ab -q -c 30 -n 40000 "http://127.0.0.1:$port/foo?foo=warm" >/dev/null
( sleep 2; kill -USR2 "$old" ) &
ab -c 30 -n 60000 "http://127.0.0.1:$port/foo?foo=bar" | grep -E "Complete requests|Failed requests|Non-2xx"
successor=$(grep -o 'started a new supervisor (pid [0-9]*' "$log" | grep -o '[0-9]*$' || true)
for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
echo "$strategy: old supervisor $old $(kill -0 "$old" 2>/dev/null && echo 'still running' || echo gone); successor ${successor:-none}"
