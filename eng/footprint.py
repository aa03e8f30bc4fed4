#!/usr/bin/env python3
"""Script, not tested: used for the idle cost of a worker group (CPU and wake-ups per thread while idle, PSS and
private dirty per process, where a worker's memory lives). For load comparisons use `perf/Sweep compare` (perf/README.md).

Idle CPU and memory of a BenchmarkApp worker group (loopback only, bounded).

Starts BenchmarkApp with the given arguments (environment assignments first, NAME=value), drives
--requests requests with ab (keep-alive off: one connection per request, so every worker gets its share), lets the
group settle, then measures over --window seconds: CPU of the supervisor and every worker (% of one core, from
/proc/PID/task/*/stat, per thread name) and wake-ups (voluntary + involuntary context switches per second), then
PSS and private dirty per process (/proc/PID/smaps_rollup) and, with --maps, where a worker's private dirty lives.
Run it under the bench lock:

  flock /tmp/bench.lock python3 eng/footprint.py --window 60 -- --WorkerProcesses:Workers=8
  flock /tmp/bench.lock python3 eng/footprint.py -- DOTNET_gcServer=0 --WorkerProcesses:Workers=8
"""
import argparse, collections, os, re, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "perf", "BenchmarkApp", "bin", "Release", "net10.0", "BenchmarkApp.dll")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in out]


def threads(pid):
    """{tid: (name, cpu ticks, context switches)} of a live process."""
    result = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
            switches = sum(int(v) for v in re.findall(r"_ctxt_switches:\s+(\d+)", status))
            result[tid] = (name, int(fields[11]) + int(fields[12]), switches)
        except OSError:
            pass
    return result


def rollup(pid):
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                values[m.group(1)] = int(m.group(2))
    return values


def mapping_kind(name, size_kb):
    if name == "[heap]":
        return "native heap (brk)"
    if name.startswith("[stack"):
        return "main stack"
    if "doublemapper" in name:
        return "JIT code (doublemapper)"
    if name.endswith(".so") or ".so." in name:
        return "native libraries"
    if name.endswith(".dll"):
        return "managed assemblies"
    if name == "":
        return "anonymous"
    return name if len(name) < 40 else "other files"


def by_mapping(pid):
    """Private dirty kB by kind of mapping, and the largest anonymous mappings."""
    kinds = collections.Counter()
    anon = []
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
            if head:
                start, end = int(head.group(1), 16), int(head.group(2), 16)
                current = [head.group(4).strip(), (end - start) // 1024, head.group(3)]
                continue
            m = re.match(r"Private_Dirty:\s+(\d+) kB", line)
            if m and current:
                dirty = int(m.group(1))
                kinds[mapping_kind(current[0], current[1])] += dirty
                if current[0] == "" and dirty:
                    anon.append((dirty, current[1], current[2]))
    return kinds, sorted(anon, reverse=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40000, help="requests before measuring (ab, -c 16)")
    parser.add_argument("--settle", type=float, default=10, help="seconds idle before the window")
    parser.add_argument("--window", type=float, default=60, help="seconds of idle measured")
    parser.add_argument("--maps", action="store_true", help="private dirty of one worker by mapping")
    parser.add_argument("--app", default=APP, help="BenchmarkApp.dll to run (another build to compare)")
    parser.add_argument("config", nargs="+", help="NAME=VALUE environment assignments, then app arguments")
    a = parser.parse_args()

    env = dict(os.environ, DOTNET_CLI_TELEMETRY_OPTOUT="1")
    args = list(a.config)
    while args and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", args[0]):
        k, v = args.pop(0).split("=", 1)
        env[k] = v
    port = free_port()
    server = subprocess.Popen(["dotnet", a.app, f"--urls=http://127.0.0.1:{port}"] + args, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(3)  # every worker accepting
        url = f"http://127.0.0.1:{port}/foo"
        if a.requests:
            subprocess.run(["timeout", "240", "ab", "-q", "-c", "16", "-n", str(a.requests), url],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(a.settle)
        pids = [server.pid] + children(server.pid)
        before = {p: threads(p) for p in pids}
        t0 = time.time()
        time.sleep(a.window)
        elapsed = time.time() - t0
        after = {p: threads(p) for p in pids}

        total_cpu = 0.0
        total_wakeups = 0.0
        by_name = collections.defaultdict(lambda: [0.0, 0.0, 0])
        for p in pids:
            role = "supervisor" if p == server.pid else "worker"
            for tid, (name, cpu, sw) in after[p].items():
                b = before[p].get(tid, (name, cpu, sw))
                pct = (cpu - b[1]) / TICK / elapsed * 100
                wake = (sw - b[2]) / elapsed
                total_cpu += pct
                total_wakeups += wake
                entry = by_name[(role, name)]
                entry[0] += pct
                entry[1] += wake
                entry[2] += 1
        print(f"config: {' '.join(a.config)}")
        print(f"idle window {elapsed:.0f} s, {len(pids) - 1} workers: group CPU {total_cpu:.2f}% of one core, "
              f"{total_wakeups:.0f} context switches/s")
        for (role, name), (pct, wake, n) in sorted(by_name.items(), key=lambda kv: -kv[1][1]):
            if pct > 0 or wake >= 0.5:
                print(f"  {role:10} {name:18} x{n:<3} cpu {pct:6.3f}%  switches/s {wake:7.1f}")

        pss = [rollup(p) for p in pids]
        workers = pss[1:]
        print(f"supervisor: PSS {pss[0].get('Pss', 0) / 1024:.1f} MB, private dirty {pss[0].get('Private_Dirty', 0) / 1024:.1f} MB, "
              f"RSS {pss[0].get('Rss', 0) / 1024:.1f} MB")
        if workers:
            avg = lambda key: sum(w.get(key, 0) for w in workers) / len(workers) / 1024
            print(f"worker (mean of {len(workers)}): PSS {avg('Pss'):.1f} MB, private dirty {avg('Private_Dirty'):.1f} MB, "
                  f"RSS {avg('Rss'):.1f} MB")
            print(f"group PSS {sum(p.get('Pss', 0) for p in pss) / 1024:.1f} MB")
        if a.maps and len(pids) > 1:
            kinds, anon = by_mapping(pids[1])
            print(f"worker {pids[1]} private dirty by mapping (kB):")
            for kind, kb in kinds.most_common():
                if kb:
                    print(f"  {kind:28} {kb:7}")
            print("  largest anonymous mappings (dirty kB / size kB / perms):")
            for dirty, size, perms in anon[:12]:
                print(f"    {dirty:7} {size:9} {perms}")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
