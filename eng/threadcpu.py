#!/usr/bin/env python3
"""Where a server group's CPU goes per request, by thread name: CPU and voluntary/involuntary context switches per
request of every thread of the server and its workers, summed by thread name (acceptor loops, thread-pool workers,
GC, timers), plus the whole group's CPU from /proc/PID/stat (which also counts threads that exited during the run).

Script, not tested (perf/README.md). Starts BenchmarkApp on 127.0.0.1:5000 with the given arguments, warms it with
wrk for 15 s, then measures one wrk run (-t1 -c30, Connection: close unless -k). Run it in a fresh network namespace so
TIME_WAIT sockets of earlier runs do not pile up:

    sudo unshare -n python3 eng/threadcpu.py -- --WorkerProcesses:Workers=8 --AcceptStrategy:Acceptors=1

Options: --app PATH (a BenchmarkApp.dll; default the Release build in perf/BenchmarkApp), --seconds N (8), -k.
Environment variables given to this script reach the server (and so its workers).
"""
import argparse, collections, os, subprocess

import benchserver

HZ = os.sysconf('SC_CLK_TCK')
HERE = os.path.dirname(os.path.abspath(__file__))


def descendants(pid):
    found = [pid]
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/children') as f:
                for child in f.read().split():
                    found += descendants(int(child))
    except FileNotFoundError:
        pass
    return found


def snapshot(root):
    processes, threads = {}, {}
    for pid in descendants(root):
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            # utime + stime + cutime + cstime: reaped children count too.
            processes[pid] = sum(int(x) for x in fields[11:15])
            for tid in os.listdir(f'/proc/{pid}/task'):
                with open(f'/proc/{pid}/task/{tid}/stat') as f:
                    stat = f.read()
                name = stat[stat.index('(') + 1:stat.rindex(')')]
                fields = stat.rsplit(')', 1)[1].split()
                with open(f'/proc/{pid}/task/{tid}/status') as f:
                    switches = {k: int(v) for k, v in (line.split(':') for line in f if 'ctxt_switches' in line)}
                threads[(pid, int(tid))] = (name, int(fields[11]) + int(fields[12]),
                                            switches['voluntary_ctxt_switches'], switches['nonvoluntary_ctxt_switches'])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return processes, threads


def wrk(seconds, keepalive):
    command = ['wrk', '-t1', '-c30', f'-d{seconds}s']
    if not keepalive:
        command += ['-H', 'Connection: close']
    out = subprocess.run(command + ['http://127.0.0.1:5000/foo?foo=bar'], capture_output=True, text=True, check=True).stdout
    return int(next(line for line in out.splitlines() if 'requests in' in line).split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--app', default=os.path.join(HERE, '../perf/BenchmarkApp/bin/Release/net10.0/BenchmarkApp.dll'))
    parser.add_argument('--seconds', type=int, default=8)
    parser.add_argument('-k', action='store_true', help='keep-alive (default: Connection: close)')
    parser.add_argument('server', nargs='*', help='arguments of the app, after --')
    args = parser.parse_args()
    with benchserver.running(args.app, args.server) as server:
        wrk(15, args.k)  # warm-up: tiered JIT reaches steady code
        p0, t0 = snapshot(server.pid)
        requests = wrk(args.seconds, args.k)
        p1, t1 = snapshot(server.pid)

    per_k = 1000 / HZ / requests * 1000
    group = sum(cpu - p0.get(pid, 0) for pid, cpu in p1.items())
    by_name = collections.defaultdict(lambda: [0, 0, 0, 0])
    for key, (name, cpu, voluntary, involuntary) in t1.items():
        _, cpu0, voluntary0, involuntary0 = t0.get(key, (name, 0, 0, 0))
        row = by_name[name]
        row[0] += cpu - cpu0
        row[1] += voluntary - voluntary0
        row[2] += involuntary - involuntary0
        row[3] += 1
    live = sum(row[0] for row in by_name.values())
    print(f'{requests} requests in {args.seconds} s ({requests / args.seconds:.0f}/s); CPU ms per 1,000 requests: '
          f'group {group * per_k:.1f}, live threads {live * per_k:.1f}')
    print(f'{"thread name":<18} {"threads":>7} {"CPU ms/1k":>9} {"voluntary/req":>13} {"involuntary/req":>15}')
    for name, (cpu, voluntary, involuntary, count) in sorted(by_name.items(), key=lambda item: -item[1][0]):
        if cpu or voluntary or involuntary:
            print(f'{name:<18} {count:>7} {cpu * per_k:>9.1f} {voluntary / requests:>13.2f} {involuntary / requests:>15.2f}')


if __name__ == '__main__':
    main()
