#!/bin/sh
# Starlet under the compare harness (perf/README.md, "The seed's experiment"): takes the harness's --urls=http://HOST:PORT
# and --max-workers=N, runs Debian's starlet on the seed's app, and prints the line the harness waits for once it answers.
set -eu
url= workers=1
for a in "$@"; do
  case "$a" in
    --urls=*) url=${a#--urls=} ;;
    --max-workers=*) workers=${a#--max-workers=} ;;
    --MeterSnapshotPath=*) ;;
    *) echo "starlet.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
[ -n "$url" ] || { echo "starlet.sh: no --urls" >&2; exit 2; }
command -v plackup >/dev/null || { echo "starlet.sh: plackup not found (apt-get install starlet)" >&2; exit 2; }
listen=${url#http://}
# The line the harness waits for, once the server answers; plackup then replaces this shell, so the harness's process
# is Starlet's master and its workers are the master's children (their CPU and memory are counted with it).
(
  i=0
  until curl -fs -o /dev/null "$url/foo?foo=bar"; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "starlet.sh: no answer on $url" >&2; exit 1; }
    sleep 0.1
  done
  echo "Application started."
) &
exec plackup -s Starlet -E production --max-workers="$workers" --listen "$listen" -a "$(dirname "$0")/app.psgi"
