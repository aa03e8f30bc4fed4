#!/usr/bin/env python3
"""Where one server process's CPU goes under load: `perf record -g` of BenchmarkApp during a wrk run, summed by kernel
and by .NET assembly, by thread name, and by the system call each kernel sample was made under.

Script, not tested (perf/README.md). Starts BenchmarkApp on 127.0.0.1:5000 with the given arguments and
DOTNET_PerfMapEnabled=1 (JIT'd frames get names) and DOTNET_EnableWriteXorExecute=0 (so they resolve), warms it with
wrk for 10 s, then records --seconds of another wrk run (-t1, --connections, Connection: close unless -k) on the URL
the compare harness loads. Needs perf and wrk; run it as root in a fresh network namespace so TIME_WAIT sockets of
earlier runs do not pile up:

    sudo unshare -n python3 eng/profile.py -k --connections 256 -- --UnsafePreferInlineScheduling=true --AcceptStrategy:Acceptors=1

Options: --app PATH (a BenchmarkApp.dll; default the Release build in perf/BenchmarkApp), --seconds N (6),
--connections N (30), -k, --keep DIR (keep perf.data there for `perf report -i`). Environment variables given to this
script reach the server. It profiles the process it starts, so use it on one process, not on a worker group.
"""
import argparse, collections, os, re, shutil, subprocess, sys, tempfile, time

import benchserver

HERE = os.path.dirname(os.path.abspath(__file__))
URL = 'http://127.0.0.1:5000/foo?foo=bar&bar=baz&baz=hoge&hoge=foo'
SAMPLE = re.compile(r'\s+([\d.]+)%\s+(\[JIT\] tid \d+|\S+)\s+\[(.)\]\s+(.*)')


def wrk(seconds, connections, keepalive):
    command = ['wrk', '-t1', f'-c{connections}', f'-d{seconds}s']
    if not keepalive:
        command += ['-H', 'Connection: close']
    return subprocess.Popen(command + [URL], stdout=subprocess.PIPE, text=True)


def report(data, *options):
    out = subprocess.run(['perf', 'report', '-i', data, '--stdio', '-g', 'none', *options],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip() and not line.startswith('#')]


def by_assembly(data):
    """Self time by owner: the kernel, the .NET assembly of a JIT'd method (the bracket before its type), or the
    native library."""
    shares = collections.Counter()
    for line in report(data, '--no-children', '--sort', 'dso,sym'):
        m = SAMPLE.match(line)
        if not m:
            continue
        percent, dso, kind, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        if kind == 'k':
            shares['kernel'] += percent
        elif '::' in symbol:
            owners = re.findall(r'\[([^\]]+)\] ', symbol.split('::')[0])
            shares[owners[-1] if owners else 'JIT\'d code, owner unknown'] += percent
        elif symbol.startswith('stub'):
            shares['runtime stubs'] += percent
        else:
            shares[dso] += percent
    return shares


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--app', default=os.path.join(HERE, '../perf/BenchmarkApp/bin/Release/net10.0/BenchmarkApp.dll'))
    parser.add_argument('--seconds', type=int, default=6)
    parser.add_argument('--connections', type=int, default=30)
    parser.add_argument('-k', action='store_true', help='keep-alive (default: Connection: close)')
    parser.add_argument('--keep', help='a folder to keep perf.data in')
    parser.add_argument('server', nargs='*', help='arguments of the app, after --')
    args = parser.parse_args()
    for tool in ('perf', 'wrk'):
        if shutil.which(tool) is None:
            sys.exit(f'{tool} is not installed')
    folder = args.keep or tempfile.mkdtemp(prefix='profile-')
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, 'perf.data')
    env = dict(os.environ, DOTNET_PerfMapEnabled='1', DOTNET_EnableWriteXorExecute='0')
    with benchserver.running(args.app, args.server, env) as server:
        warm = wrk(10, args.connections, args.k)  # tiered JIT reaches steady code
        warm.communicate()
        load = wrk(args.seconds + 3, args.connections, args.k)
        time.sleep(1)
        subprocess.run(['perf', 'record', '-F', '1999', '-g', '-p', str(server.pid), '-o', data, '--',
                        'sleep', str(args.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out, _ = load.communicate()
        rate = next((line for line in out.splitlines() if 'Requests/sec' in line), 'no Requests/sec line').strip()
        errors = [line.strip() for line in out.splitlines() if 'Non-2xx' in line or 'Socket errors' in line]

    print(f'wrk -t1 -c{args.connections} {"keep-alive" if args.k else "Connection: close"}: {rate}'
          + ''.join(f'; {e}' for e in errors))
    print('\nself time by owner (% of samples)')
    for owner, percent in by_assembly(data).most_common(14):
        print(f'{percent:6.1f}  {owner}')
    print('\nby thread name')
    for line in report(data, '--no-children', '--sort', 'comm')[:6]:
        print('  ' + line.strip())
    print('\nkernel time under each system call, and loopback delivery (with children)')
    for line in report(data, '--children', '--sort', 'sym'):
        if re.search(r'\] (__x64_sys_\w+|net_rx_action)$', line):
            total = line.split()[0]
            if float(total.rstrip('%')) >= 0.2:
                print(f'{total:>8}  {line.split()[-1]}')
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == '__main__':
    main()
