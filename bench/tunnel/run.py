#!/usr/bin/env python3
"""Benchmark `ipquest tunnel` against established proxies, all on loopback, in one run.

Systems (each started here on its own port, stopped by PID):
  direct       the client talks to nginx itself: the limit of this client + nginx on this machine
  ipquest      `ipquest tunnel http` (CONNECT)            vs  tinyproxy, squid (CONNECT)
  ipquest-tcp  `ipquest tunnel tcp` (fixed destination)   vs  haproxy `mode tcp`
Tests (same client, bench/tunnel/tunnelbench.c, for every system):
  (a) one tunnel, 200 x GET 1 MiB keep-alive          -> MiB/s
  (b) one tunnel, 2 x GET 256 MiB (512 MiB streamed)    -> MiB/s
  (c) 32 clients for 10 s: connect, CONNECT, GET 100 B, close -> tunnels/s, p50/p99 ms, proxy CPU us/tunnel
Repetitions are interleaved across systems; medians are reported with each system's peak RSS and CPU,
and ratios ipquest / peer.

Needs: nginx tinyproxy squid haproxy (Debian packages), gcc, and an ipquest binary:
  IPQUEST=/path/to/ipquest python3 bench/tunnel/run.py          (default: builds it in release)
Env: REPS (default 3), SETUP_SECONDS (10), SETUP_THREADS (32), TUNNEL_LOG_LEVEL (notice), TUNNEL_ENGINE
     (automatic: epoll; or nio), SYSTEMS (comma list), TESTS (comma list of a,b,c).
Logging: no peer writes a line per connection here (tinyproxy at Warning, squid with access_log none, haproxy
without a log target), so ipquest runs at notice, which has no per-tunnel line either. TUNNEL_LOG_LEVEL=info
measures it with its line (one write(2) to a file per tunnel; about 12 us of CPU per tunnel in test c).
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REPS = int(os.environ.get("REPS", "3"))
SETUP_SECONDS = float(os.environ.get("SETUP_SECONDS", "10"))
SETUP_THREADS = int(os.environ.get("SETUP_THREADS", "32"))
LOG_LEVEL = os.environ.get("TUNNEL_LOG_LEVEL", "notice")
ENGINE = os.environ.get("TUNNEL_ENGINE", "automatic")
NGINX_PORT = 18180
PORTS = {"direct": NGINX_PORT, "ipquest": 18181, "tinyproxy": 18182, "squid": 18183, "ipquest-tcp": 18184,
         "haproxy-tcp": 18185}
CONNECT_SYSTEMS = {"ipquest", "tinyproxy", "squid"}


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def process_tree(pid):
    """pid and its descendants (squid/nginx may fork)."""
    out = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        children = []
    for child in children:
        out += process_tree(int(child))
    return out


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pids):
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


class Sampler:
    """Peak RSS of a process tree, sampled every 100 ms while a test runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(process_tree(self.pid)))
            time.sleep(0.1)

    def __enter__(self):
        self.cpu0 = cpu_seconds(process_tree(self.pid))
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.cpu = cpu_seconds(process_tree(self.pid)) - self.cpu0


def build_client(work):
    binary = os.path.join(work, "tunnelbench")
    subprocess.run(["gcc", "-O2", "-pthread", "-o", binary, os.path.join(HERE, "tunnelbench.c")], check=True)
    return binary


def ipquest_binary():
    if os.environ.get("IPQUEST"):
        return os.environ["IPQUEST"]
    scratch = os.path.join(ROOT, ".build-tunnel-bench")
    subprocess.run(["scripts/build-release.sh", "ipquest", "--scratch-path", scratch],
                   cwd=ROOT, check=True)
    return os.path.join(scratch, "release", "ipquest")


def evict_from_page_cache(path):
    """Starts a program as after a reboot, whatever wrote it last. A binary just written (a build, a cp) sits in
    the page cache in large folios, and every page fault then maps a whole folio: ipquest's idle RSS measured
    16.1-16.4 MB fresh from the linker, 14.0-14.3 MB once read back from disk. Peers installed long ago are in
    the second state already; this puts every system there."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def start_systems(work, selected, procs):
    www = os.path.join(work, "www")
    os.makedirs(www)
    for name, size in [("100b", 100), ("1m", 1 << 20), ("256m", 256 << 20)]:
        with open(os.path.join(www, name), "wb") as f:
            remaining = size
            while remaining:
                chunk = os.urandom(min(remaining, 1 << 20))
                f.write(chunk)
                remaining -= len(chunk)
    os.chmod(work, 0o755)
    os.chmod(www, 0o755)
    write(os.path.join(work, "nginx.conf"), f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  server {{ listen 127.0.0.1:{NGINX_PORT}; root {www}; location / {{ default_type application/octet-stream; }} }}
}}
""")
    procs["nginx"] = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-p", work],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(NGINX_PORT)

    for tool in ("tinyproxy", "squid", "haproxy"):
        if shutil.which(tool):
            evict_from_page_cache(os.path.realpath(shutil.which(tool)))
    if "ipquest" in selected or "ipquest-tcp" in selected:
        binary = ipquest_binary()
        evict_from_page_cache(binary)
        write(os.path.join(work, "tunnel.yaml"), "target_connection:\n  denied_networks: []\n")
        log = open(os.path.join(work, "ipquest.log"), "w")
        if "ipquest" in selected:
            procs["ipquest"] = subprocess.Popen(
                [binary, "tunnel", "--config", f"{work}/tunnel.yaml", "--bind", f"127.0.0.1:{PORTS['ipquest']}",
                 "--log-level", LOG_LEVEL, "--engine", ENGINE, "http"], stdout=subprocess.DEVNULL, stderr=log)
        if "ipquest-tcp" in selected:
            procs["ipquest-tcp"] = subprocess.Popen(
                [binary, "tunnel", "--config", f"{work}/tunnel.yaml", "--bind", f"127.0.0.1:{PORTS['ipquest-tcp']}",
                 "--log-level", LOG_LEVEL, "--engine", ENGINE, "tcp", "--destination", f"127.0.0.1:{NGINX_PORT}"],
                stdout=subprocess.DEVNULL, stderr=log)
    if "tinyproxy" in selected:
        write(os.path.join(work, "tinyproxy.conf"), f"""
Port {PORTS['tinyproxy']}
Listen 127.0.0.1
Timeout 600
Allow 127.0.0.1
ConnectPort {NGINX_PORT}
LogLevel Warning
MaxClients 2048
""")
        procs["tinyproxy"] = subprocess.Popen(["tinyproxy", "-d", "-c", f"{work}/tinyproxy.conf"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if "squid" in selected:
        squid_dir = os.path.join(work, "squid")
        os.makedirs(squid_dir)
        os.chmod(squid_dir, 0o777)
        write(os.path.join(work, "squid.conf"), f"""
http_port 127.0.0.1:{PORTS['squid']}
http_access allow all
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log {squid_dir}/cache.log
pid_filename {squid_dir}/squid.pid
coredump_dir {squid_dir}
workers 1
shutdown_lifetime 1 seconds
max_filedescriptors 8192
""")
        procs["squid"] = subprocess.Popen(["squid", "-N", "-f", f"{work}/squid.conf"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if "haproxy-tcp" in selected:
        write(os.path.join(work, "haproxy.cfg"), f"""
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen relay
  bind 127.0.0.1:{PORTS['haproxy-tcp']}
  server nginx 127.0.0.1:{NGINX_PORT}
""")
        procs["haproxy-tcp"] = subprocess.Popen(["haproxy", "-db", "-f", f"{work}/haproxy.cfg"],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name in selected:
        wait_port(PORTS[name])
    return procs


def run_client(client, system, args, timeout):
    target = str(NGINX_PORT) if system in CONNECT_SYSTEMS else "0"
    command = [client, args[0], "127.0.0.1", str(PORTS[system]), target] + args[1:]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        return None
    return dict(kv.split("=", 1) for kv in result.stdout.split())


TESTS = [
    ("a", "200 x GET 1 MiB keep-alive, MiB/s", ["get", "/1m", "200"], "mib_per_s", 120),
    ("b", "stream 2 x 256 MiB, MiB/s", ["get", "/256m", "2"], "mib_per_s", 120),
    ("c", f"{SETUP_THREADS} clients x {SETUP_SECONDS:g} s CONNECT+GET 100 B+close, tunnels/s",
     ["setup", "/100b", str(SETUP_THREADS), str(SETUP_SECONDS)], "tunnels_per_s", SETUP_SECONDS + 60),
]


def main():
    wanted_tests = set(os.environ.get("TESTS", "a,b,c").split(","))
    tests = [t for t in TESTS if t[0] in wanted_tests]
    selected = [s for s in os.environ.get("SYSTEMS", ",".join(PORTS)).split(",") if s]
    for tool in ["nginx", "gcc"] + [{"tinyproxy": "tinyproxy", "squid": "squid", "haproxy-tcp": "haproxy"}.get(s, "")
                                    for s in selected]:
        if tool and not shutil.which(tool):
            sys.exit(f"missing {tool}: apt-get install nginx tinyproxy squid haproxy gcc")
    work = tempfile.mkdtemp(prefix="tunnelbench-")
    client = build_client(work)
    procs = {}
    results = {}  # (test, system) -> list of (value, extra dict, rss, cpu)
    try:
        procs.update(start_systems(work, selected, procs))
        for test, title, args, key, timeout in tests:
            for rep in range(REPS):
                for system in selected:
                    pid = procs["nginx"].pid if system == "direct" else procs[system].pid
                    with Sampler(pid) as sample:
                        out = run_client(client, system, args, timeout)
                    rss = 0 if system == "direct" else sample.peak
                    cpu = 0 if system == "direct" else sample.cpu
                    results.setdefault((test, system), []).append((out, rss, cpu))
                    shown = out[key] if out else "FAILED"
                    print(f"# ({test}) rep {rep + 1} {system:12s} {shown}", file=sys.stderr, flush=True)
                    time.sleep(0.5)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    medians = {}
    for test, title, args, key, _ in tests:
        print(f"\n({test}) {title}  [median of {REPS}]")
        header = f"  {'system':12s} {key:>14s}"
        if test == "c":
            header += f" {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'CPU us/tunnel':>14s}"
        header += f" {'peak RSS MiB':>13s} {'CPU s':>7s}"
        print(header)
        for system in selected:
            runs = [r for r in results.get((test, system), []) if r[0]]
            if not runs:
                print(f"  {system:12s} {'FAILED':>14s}")
                continue
            value = statistics.median(float(r[0][key]) for r in runs)
            medians[(test, system)] = value
            line = f"  {system:12s} {value:14,.1f}"
            if test == "c":
                line += f" {statistics.median(float(r[0]['p50_ms']) for r in runs):8.2f}"
                line += f" {statistics.median(float(r[0]['p99_ms']) for r in runs):8.2f}"
                line += f" {sum(int(r[0]['errors']) for r in runs):7d}"
                # The proxy's CPU per tunnel: steadier than the rate, which the client and nginx share the cores for.
                per_tunnel = statistics.median(r[2] / int(r[0]['tunnels']) * 1e6 for r in runs if int(r[0]['tunnels']))
                line += f" {per_tunnel:14.0f}" if system != "direct" else f" {'-':>14s}"
            line += f" {max(r[1] for r in runs) / 1024:13.1f} {statistics.median(r[2] for r in runs):7.2f}"
            print(line)
        pairs = [("ipquest", p) for p in ("tinyproxy", "squid")] + [("ipquest-tcp", "haproxy-tcp"),
                                                                   ("ipquest", "direct")]
        ratios = [f"{a}/{b} = {medians[(test, a)] / medians[(test, b)]:.2f}x" for a, b in pairs
                  if (test, a) in medians and (test, b) in medians and medians[(test, b)] > 0]
        if ratios:
            print("  ratios of the medians: " + ", ".join(ratios))
        # Each repetition runs the systems back to back, so a pair of one repetition shares the machine's state
        # (on a shared VM the rate drifts by 20 % and more between repetitions): the median of those ratios.
        paired = []
        for a, b in pairs:
            values = [float(x[0][key]) / float(y[0][key]) for x, y in zip(results.get((test, a), []),
                                                                          results.get((test, b), []))
                      if x[0] and y[0] and float(y[0][key]) > 0]
            if values:
                paired.append(f"{a}/{b} = {statistics.median(values):.2f}x ({' '.join(f'{v:.2f}' for v in values)})")
        if paired:
            print("  per repetition, median: " + ", ".join(paired))
    print(f"\nwork dir (configs, logs): {work}")


if __name__ == "__main__":
    main()
