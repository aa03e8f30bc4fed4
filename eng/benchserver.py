"""BenchmarkApp on 127.0.0.1:5000 for the eng/ measurement scripts: started, answered once, stopped."""
import contextlib, signal, subprocess, sys, time, urllib.request

ADDRESS = 'http://127.0.0.1:5000'


@contextlib.contextmanager
def running(app, server_args, env=None):
    """Starts the app (a .dll, run with dotnet) with loopback up, waits until it answers, yields its Popen, and stops
    it with SIGTERM at the end."""
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=False)
    server = subprocess.Popen(['dotnet', app, f'--urls={ADDRESS}', *server_args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f'{ADDRESS}/foo?foo=warm', timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit(f'the server did not answer on {ADDRESS} within 60 s')
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
