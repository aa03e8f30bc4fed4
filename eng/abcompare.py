#!/usr/bin/env python3
"""Interleaved load comparison of BenchmarkApp configurations (ab or wrk), loopback only, bounded.

Each configuration runs as its own server process at the same time as the others, inside a fresh network namespace
(clean TIME_WAIT table; falls back to the host namespace when `ip netns` is unavailable). Every server is warmed,
then the load runs go round-robin forward and backward (A B C C B A ...), and the report gives for each
configuration the median requests/sec with min-max, the median of per-round ratios against the first configuration,
failed requests, server CPU milliseconds per 1,000 requests (utime+stime of the server's process tree) and context
switches per request (voluntary + involuntary, every thread of the tree). With --syscalls each run is also counted with
`perf stat -e raw_syscalls:sys_enter` on the server's processes, for system calls per request (perf's own overhead is
small but not nil: compare configurations measured the same way).

  python3 eng/abcompare.py --rounds 8 --tool ab -- \
      'baseline=--Baseline=true' 'reuseport=--AcceptStrategy:Strategy=ReusePort'

A configuration may set environment variables (NAME=value words) and name the app with APP=PATH: an executable (a
Native AOT publish of BenchmarkApp) runs directly, a .dll runs with `dotnet`; the default is the JIT build below.

  python3 eng/abcompare.py -- 'jit=--AcceptStrategy:Workers=2' 'aot=APP=/tmp/aot/BenchmarkApp --AcceptStrategy:Workers=2'
"""
import argparse, os, re, signal, statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "perf", "BenchmarkApp", "bin", "Release", "net10.0", "BenchmarkApp.dll")
PATH = "/foo?foo=bar&bar=baz&baz=hoge&hoge=foo"
TICK = os.sysconf("SC_CLK_TCK")


def children(pid):
    try:
        return [int(c) for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    except OSError:
        return []


def tree_cpu_ms(pid):
    """CPU ms of a server: the process, its live workers, and the workers it has reaped (cutime + cstime)."""
    total = 0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if p == pid else 0)
        except OSError:
            pass
    return total * 1000 // TICK


def tree_switches(pid):
    """Context switches so far of every thread of a server's live processes (voluntary + involuntary)."""
    total = 0
    for p in [pid] + children(pid):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/status") as f:
                    total += sum(int(l.split()[1]) for l in f if l.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))
        except OSError:
            pass
    return total


def count_syscalls(pid):
    """Starts counting system calls of a server's processes; returns a function that stops and returns the count."""
    pids = ",".join(str(p) for p in [pid] + children(pid))
    perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", pids],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.2)  # perf attaches before the load starts

    def stop():
        perf.send_signal(signal.SIGINT)
        out = perf.communicate(timeout=30)[1]
        counts = [int(l.split(",")[0]) for l in out.splitlines() if "raw_syscalls:sys_enter" in l and l.split(",")[0].isdigit()]
        return sum(counts) if counts else None
    return stop


def memory_kib(pid):
    """(RSS, PSS) in KiB of one process; PSS splits shared pages (the runtime, the app) among the processes sharing them."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def app_command(app):
    """How to start an app: a .dll through dotnet, anything else (a Native AOT or app-host executable) directly."""
    app = os.path.abspath(app)
    if not os.path.isfile(app):
        sys.exit(f"APP={app}: no such file")
    if app.endswith(".dll"):
        return ["dotnet", app]
    if not os.access(app, os.X_OK):
        sys.exit(f"APP={app}: not executable (give a .dll to run it with dotnet)")
    return [app]


def workers_of(args):
    m = re.search(r"--AcceptStrategy:Workers=(\d+)", args)
    return int(m.group(1)) if m else 0


def run_load(tool, port, n, conc, keepalive, duration, netns):
    url = f"http://127.0.0.1:{port}{PATH}"
    if tool == "ab":
        cmd = ["ab", "-q", "-c", str(conc), "-n", str(n), "-s", "10"] + (["-k"] if keepalive else []) + [url]
    else:
        cmd = ["wrk", "-t1", f"-c{conc}", f"-d{duration}s", "--timeout", "5s"] + ([] if keepalive else ["-H", "Connection: close"]) + [url]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    out = res.stdout
    if ("Requests per second" if tool == "ab" else "Requests/sec") not in out:
        sys.exit(f"{' '.join(cmd)} failed (exit {res.returncode}):\n{out}\n{res.stderr}")
    if tool == "ab":
        rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        done = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
        return rps, failed + (int(non2xx.group(1)) if non2xx else 0), done
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = (sum(int(g) for g in errs.groups()) if errs else 0) + (int(non2xx.group(1)) if non2xx else 0)
    return rps, failed, done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--tool", choices=["ab", "wrk"], default="ab")
    ap.add_argument("-n", type=int, default=20000, help="requests per ab run")
    ap.add_argument("-c", type=int, default=30)
    ap.add_argument("-k", action="store_true", help="keep-alive")
    ap.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=40000, help="requests per server before measuring")
    ap.add_argument("--no-netns", action="store_true")
    ap.add_argument("--syscalls", action="store_true", help="count system calls per request with perf stat")
    ap.add_argument("configs", nargs="+", help="label=arg1 arg2 ...")
    a = ap.parse_args()

    netns = None
    if not a.no_netns and os.geteuid() == 0:
        netns = f"abcompare{os.getpid()}"
        if subprocess.run(["ip", "netns", "add", netns]).returncode == 0:
            subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
        else:
            netns = None
    servers = []
    try:
        for i, spec in enumerate(a.configs):
            label, _, args = spec.partition("=")
            port = 5100 + i
            words = args.split()
            apps = [w[len("APP="):] for w in words if w.startswith("APP=")]
            if len(apps) > 1:
                sys.exit(f"{label}: APP= given {len(apps)} times")
            app = app_command(apps[0] if apps else APP)
            env_assignments = [w for w in words if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) and not w.startswith("APP=")]
            app_args = [w for w in words if w not in env_assignments and not w.startswith("APP=")]
            cmd = ["env"] + env_assignments + app + [f"--urls=http://127.0.0.1:{port}"] + app_args
            if netns:
                cmd = ["ip", "netns", "exec", netns] + cmd
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
            servers.append({"label": label, "port": port, "proc": p, "app": app[-1], "rps": [], "failed": 0, "cpu": [], "ratio": [], "cs": [], "sys": [],
                            "workers": workers_of(args)})
        for s in servers:
            deadline = time.time() + 60
            # Workers share the supervisor's output: wait for each to be ready, then for the supervisor itself.
            ready = 0
            for line in s["proc"].stdout:
                ready += "is ready after" in line
                if "Application started." in line and ready >= s["workers"]:
                    break
                if time.time() > deadline:
                    sys.exit(f"{s['label']} did not start")
            threading.Thread(target=lambda f=s["proc"].stdout: [None for _ in f], daemon=True).start()
            # The oldest process with this command line is the one we started (the supervisor, when there are workers);
            # the app's path then the port match `dotnet X.dll --urls=...` and a native `X --urls=...` alike.
            pattern = re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", f"{s['app']} --urls=http://127.0.0.1:{s['port']}") + "( |$)"
            s["pid"] = int(subprocess.run(["pgrep", "-f", "-o", pattern], capture_output=True, text=True).stdout.split()[0])
            procs = [s["pid"]] + children(s["pid"])
            mems = [memory_kib(p) for p in procs]
            s["mem"] = (len(procs), sum(m[0] for m in mems), sum(m[1] for m in mems),
                        statistics.median([m[0] for m in mems[1:]]) if len(mems) > 1 else mems[0][0])
        for s in servers:  # warm-up: tiered JIT needs ~40k requests in every process that serves
            run_load("ab", s["port"], a.warmup * max(1, s["workers"]), a.c, a.k, a.duration, netns)
        order = list(range(len(servers)))
        for r in range(a.rounds):
            seq = order if r % 2 == 0 else order[::-1]
            this_round = {}
            for i in seq:
                s = servers[i]
                stop = count_syscalls(s["pid"]) if a.syscalls else None
                c0, x0 = tree_cpu_ms(s["pid"]), tree_switches(s["pid"])
                rps, failed, done = run_load(a.tool, s["port"], a.n, a.c, a.k, a.duration, netns)
                s["cpu"].append((tree_cpu_ms(s["pid"]) - c0) * 1000 / max(done, 1))
                s["cs"].append((tree_switches(s["pid"]) - x0) / max(done, 1))
                if stop and (calls := stop()) is not None:
                    s["sys"].append(calls / max(done, 1))
                s["rps"].append(rps)
                s["failed"] += failed
                this_round[i] = rps
            for i, s in enumerate(servers):
                s["ratio"].append(this_round[i] / this_round[0])
            print(f"round {r + 1}/{a.rounds}: " + "  ".join(f"{servers[i]['label']}={this_round[i]:.0f}" for i in order), file=sys.stderr, flush=True)
        mode = f"{a.tool} -c {a.c}" + (f" -n {a.n}" if a.tool == "ab" else f" -d {a.duration}s") + (" keep-alive" if a.k else " connection-close")
        print(f"\n{mode}, {a.rounds} rounds interleaved, netns={'yes' if netns else 'no'}")
        print("| configuration | req/s median | min-max | ratio vs first (median of per-round) | failed | server CPU ms / 1k req | "
              "CPU ratio vs first | context switches / req" + (" | syscalls / req |" if a.syscalls else " |"))
        print("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if a.syscalls else ""))
        for s in servers:
            cpu_ratio = statistics.median(c / f for c, f in zip(s["cpu"], servers[0]["cpu"]) if f > 0)
            print(f"| {s['label']} | {statistics.median(s['rps']):.0f} | {min(s['rps']):.0f}-{max(s['rps']):.0f} | "
                  f"{statistics.median(s['ratio']):.3f} | {s['failed']} | {statistics.median(s['cpu']):.0f} | {cpu_ratio:.2f} | "
                  f"{statistics.median(s['cs']):.2f}" + (f" | {statistics.median(s['sys']):.1f} |" if a.syscalls and s["sys"] else " |"))
        print("\nMemory right after start-up, before any load (KiB; PSS counts shared pages once across the group):")
        print("| configuration | processes | RSS total | PSS total | RSS of one serving process (median) |")
        print("|---|---:|---:|---:|---:|")
        for s in servers:
            n, rss, pss, one = s["mem"]
            print(f"| {s['label']} | {n} | {rss} | {pss} | {one:.0f} |")
    finally:
        for s in servers:
            try:
                os.killpg(s["proc"].pid, signal.SIGTERM)
                s["proc"].wait(timeout=15)
            except Exception:
                os.killpg(s["proc"].pid, signal.SIGKILL)
        if netns:
            subprocess.run(["ip", "netns", "del", netns])


if __name__ == "__main__":
    main()
