#!/usr/bin/env python3
"""First contentful paint of the pages in headless Chromium, two builds in the same run.

Both binaries serve a copy of the same board (bench/seed_claims.py: COUNT claims, PLAYERS
players, fixed seed); each page is loaded RUNS times in a fresh browser profile (cold cache)
(the two builds' loads alternate, both servers up at once) and the median first contentful
paint, DOM-content-loaded and transferred bytes are printed with the ratio AFTER/BEFORE.

  BEFORE=path/to/old/ipquest AFTER=path/to/new/ipquest [COUNT=200000] [PLAYERS=2000] [RUNS=9] \\
      python3 bench/paint.py

Needs chromium, chromium-driver and python3-selenium (Debian packages).
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "web"))
from conftest import make_driver  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BEFORE, AFTER = os.environ.get("BEFORE"), os.environ.get("AFTER")
COUNT = int(os.environ.get("COUNT", "200000"))
PLAYERS = int(os.environ.get("PLAYERS", "2000"))
RUNS = int(os.environ.get("RUNS", "9"))
PAGES = ["/", "/players/player7", "/blocks/10", "/about.html"]

PAINT = """
var done = arguments[arguments.length - 1];
function read() {
  var nav = performance.getEntriesByType('navigation')[0];
  var res = performance.getEntriesByType('resource');
  var fcp = performance.getEntriesByName('first-contentful-paint')[0];
  if (!fcp || !nav || !nav.loadEventEnd) { setTimeout(read, 20); return; }
  done({fcp: fcp.startTime, dcl: nav.domContentLoadedEventEnd,
        bytes: nav.transferSize + res.reduce(function (a, r) { return a + r.transferSize; }, 0)});
}
read();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(binary: str, database: str):
    port = free_port()
    process = subprocess.Popen([binary, "serve", "--port", str(port), "--database", database, "--durability", "normal"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{binary} did not start")


def load(port: int, path: str) -> dict:
    driver = make_driver()
    try:
        driver.get(f"http://127.0.0.1:{port}{path}")
        return driver.execute_async_script(PAINT)
    finally:
        driver.quit()


def measure(ports: dict) -> dict:
    """Loads alternate between the builds (both servers up at once), so drift on a shared
    machine falls on both alike."""
    figures = {label: {path: [] for path in PAGES} for label in ports}
    for _ in range(RUNS):
        for path in PAGES:
            for label, port in ports.items():
                figures[label][path].append(load(port, path))
    return {label: {path: {k: statistics.median(f[k] for f in runs) for k in ("fcp", "dcl", "bytes")}
                    for path, runs in pages.items()} for label, pages in figures.items()}


def main() -> None:
    if not BEFORE or not AFTER:
        raise SystemExit(__doc__)
    work = tempfile.mkdtemp(prefix="ipquest-paint-")
    try:
        seed = os.path.join(work, "claims.tsv")
        subprocess.run([sys.executable, os.path.join(HERE, "seed_claims.py"), seed, str(COUNT), str(PLAYERS)], check=True)
        servers, ports = [], {}
        try:
            for label, binary in (("before", BEFORE), ("after", AFTER)):
                database = os.path.join(work, f"{label}.sqlite")
                subprocess.run([binary, "claims", "import", "--database", database, seed], check=True, capture_output=True)
                process, port = serve(binary, database)
                servers.append(process)
                ports[label] = port
            for label, port in ports.items():  # warm the servers' caches once
                for path in PAGES:
                    load(port, path)
            results = measure(ports)
        finally:
            for process in servers:
                process.kill()
                process.wait()
        print(f"first contentful paint, median of {RUNS} cold loads; board of {COUNT} claims, {PLAYERS} players")
        print(f"{'page':22} {'FCP before':>11} {'FCP after':>10} {'ratio':>6} {'DCL before':>11} {'DCL after':>10} {'bytes before':>13} {'bytes after':>12}")
        for path in PAGES:
            b, a = results["before"][path], results["after"][path]
            print(f"{path:22} {b['fcp']:9.1f}ms {a['fcp']:8.1f}ms {a['fcp'] / b['fcp']:6.2f} {b['dcl']:9.1f}ms {a['dcl']:8.1f}ms {b['bytes']:13.0f} {a['bytes']:12.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
