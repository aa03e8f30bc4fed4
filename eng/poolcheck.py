#!/usr/bin/env python3
"""Script, not tested: used to check by hand that a ReusePort adaptive pool grows and shrinks with no failed request
(the test suite covers the pool's policy; this runs it under real load in a private network namespace).

A ReusePort adaptive pool grows and shrinks with no failed request (loopback only, bounded).

The supervisor steers new connections away from a slot before its worker drains and keeps the slot's sockets, so a
ReusePort pool needs no net.ipv4.tcp_migrate_req (docs/workers.md, "The adaptive pool"); --migrate sets it to 1 to
compare. So as not to change the machine's own network namespace, this re-runs itself in a private one (root:
unshare -n), brings its loopback up, sets net.ipv4.tcp_migrate_req there (0, or 1 with --migrate) and starts
BenchmarkApp with Workers=1, MaxWorkers=4, MinSpareWorkers=1, MaxSpareWorkers=1. 16 clients of
/slow?ms=100 (one connection per request) run for --load seconds, then 10 sequential clients of /foo for --idle
seconds while the pool shrinks; it prints the pool's log lines and the failed requests (exit 1 if any). Run it under
the bench lock:

  flock /tmp/bench.lock python3 eng/poolcheck.py
"""
import argparse, http.client, os, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "perf", "BenchmarkApp", "bin", "Release", "net10.0", "BenchmarkApp.dll")
PORT = 18080


def inner(args):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["sysctl", "-qw", f"net.ipv4.tcp_migrate_req={1 if args.migrate else 0}"], check=True)
    app = subprocess.Popen(
        ["dotnet", args.app, f"--urls=http://127.0.0.1:{PORT}", "--AcceptStrategy:Strategy=ReusePort", "--AcceptStrategy:Acceptors=1",
         "--WorkerProcesses:Workers=1", "--WorkerProcesses:MaxWorkers=4", "--WorkerProcesses:MinSpareWorkers=1", "--WorkerProcesses:MaxSpareWorkers=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in app.stdout], daemon=True).start()
    deadline = time.time() + 60
    while time.time() < deadline and not any("is ready after" in l for l in lines):
        time.sleep(0.1)

    failures, done, stop = [], [0], [False]

    def client(path):
        while not stop[0]:
            try:
                c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
                c.request("GET", path, headers={"Connection": "close"})
                r = c.getresponse()
                r.read()
                c.close()
                if r.status != 200:
                    failures.append(r.status)
                done[0] += 1
            except Exception as e:  # every failure counts, whatever it is
                failures.append(repr(e))

    for path, clients, seconds in (("/slow?ms=100", 16, args.load), ("/foo", 10, args.idle)):
        stop[0] = False
        threads = [threading.Thread(target=client, args=(path,)) for _ in range(clients)]
        [t.start() for t in threads]
        time.sleep(seconds)
        stop[0] = True
        [t.join() for t in threads]

    app.terminate()
    app.wait(60)
    print("".join(l for l in lines if "Adaptive pool" in l or " exited: " in l), end="")
    print(f"{done[0]} requests, {len(failures)} failed {failures[:5]}")
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--app", default=APP)
    p.add_argument("--load", type=float, default=15)
    p.add_argument("--idle", type=float, default=30)
    p.add_argument("--migrate", action="store_true", help="set net.ipv4.tcp_migrate_req = 1 in the namespace (default 0)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        return inner(args)
    return subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--inner", "--app", args.app,
                           "--load", str(args.load), "--idle", str(args.idle)] + (["--migrate"] if args.migrate else [])).returncode


if __name__ == "__main__":
    sys.exit(main())
