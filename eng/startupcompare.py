#!/usr/bin/env python3
"""Script, not tested: used to compare what a fresh JIT worker costs to start (time and CPU to ready, CPU of its first
requests) between builds or runtime settings. For load comparisons use `perf/Sweep compare` (perf/README.md).

A fresh worker's start-up cost per BenchmarkApp configuration, interleaved (A B C C B A ...), loopback only, bounded.

Each trial starts a supervisor with one worker (ReusePort, one acceptor) and reads the worker's own figures from its
WorkerReady event (ProcessMilliseconds: wall time from its process start to ready; CpuMilliseconds: CPU time by then),
then sends two phases of N connection-per-request GETs (ab -c 10) and takes the worker's CPU for each: the first phase
is the cold one (tier-0 code), the second shows how far the worker still is from warm. Configurations take env
assignments, and APP=path runs another build of BenchmarkApp.dll (a ReadyToRun publish, say):

  flock /tmp/bench.lock python3 eng/startupcompare.py --rounds 5 -n 10000 -- 'base=' 'pgo0=DOTNET_TieredPGO=0'
"""
import argparse, json, os, re, signal, statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "perf", "BenchmarkApp", "bin", "Release", "net10.0", "BenchmarkApp.dll")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // TICK


def ab(port, n):
    started = time.time()
    res = subprocess.run(["ab", "-q", "-s", "10", "-n", str(n), "-c", "10", f"http://127.0.0.1:{port}/foo?foo=bar"],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"Failed requests:\s+(\d+)", res.stdout)
    if not m:
        sys.exit(f"ab failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}")
    return time.time() - started, int(m.group(1))


def trial(args, port, n):
    assignments = [w for w in args.split() if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
    env = dict(os.environ, Logging__Console__FormatterName="json")
    app = APP
    for w in assignments:
        key, _, value = w.partition("=")
        if key == "APP":
            app = value
        else:
            env[key] = value
    cmd = ["dotnet", app, f"--urls=http://127.0.0.1:{port}", "--WorkerProcesses:Workers=1",
           "--AcceptStrategy:Acceptors=1", "--AcceptStrategy:Strategy=ReusePort"] + [w for w in args.split() if w not in assignments]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        ready = None
        timer = threading.Timer(60, lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.start()
        for line in p.stdout:
            if line.startswith('{"EventId":12,'):
                ready = json.loads(line)["State"]
                break
        timer.cancel()
        if ready is None:
            sys.exit(f"{args}: no worker became ready within 60 s")
        threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
        pid = int(ready["Pid"])
        c0 = cpu_ms(pid)
        s1, f1 = ab(port, n)
        c1 = cpu_ms(pid)
        s2, f2 = ab(port, n)
        c2 = cpu_ms(pid)
        return dict(wall=int(ready["ProcessMilliseconds"]), cpu=int(ready["CpuMilliseconds"]),
                    first=c1 - c0, next=c2 - c1, s1=s1, s2=s2, failed=f1 + f2)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=10000, help="requests per phase")
    ap.add_argument("configs", nargs="+", help="label=[ENV=value ...] [APP=path] [app arguments]")
    a = ap.parse_args()
    configs = [(c.partition("=")[0], c.partition("=")[2]) for c in a.configs]
    results = {label: [] for label, _ in configs}
    for r in range(a.rounds):
        for i, (label, args) in enumerate(configs if r % 2 == 0 else configs[::-1]):
            results[label].append(trial(args, 5300 + i, a.n))

    def med(xs, f="{:.0f}"):
        return f"{f.format(statistics.median(xs))} ({f.format(min(xs))}-{f.format(max(xs))})"

    print(f"{a.rounds} rounds interleaved, {a.n} requests per phase (ab -c 10, one connection per request); median (min-max)")
    print("| configuration | ready: wall ms | ready: CPU ms | CPU ms, first N | CPU ms, next N | s, first N | s, next N | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, _ in configs:
        rs = results[label]
        print(f"| {label} | {med([x['wall'] for x in rs])} | {med([x['cpu'] for x in rs])} | {med([x['first'] for x in rs])} | "
              f"{med([x['next'] for x in rs])} | {med([x['s1'] for x in rs], '{:.2f}')} | {med([x['s2'] for x in rs], '{:.2f}')} | "
              f"{sum(x['failed'] for x in rs)} |")


if __name__ == "__main__":
    main()
