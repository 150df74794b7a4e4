#!/usr/bin/env python3
"""Score refresh at 1 M and 10 M stored claims: does it stay flat?

For each size N the script fills a fresh PostgreSQL database with N claims (1,000 players,
timestamps spread over 60 days so every window has work), starts two `ipquest serve` instances on
it, and measures:
  load      seconds from start until the instance listens (it reads every claim once)
  latency   a claim sent to instance A, until instance B's /api/leaderboard snapshot shows it
            (change feed + board update + snapshot re-encode), median and max of 20 probes
  rebuild   instance B's snapshot re-encode time, from its metrics (mean over the run)
  rss       instance B's resident memory after the probes
Flat means: latency and rebuild at 10 M are within noise of 1 M (neither reads the table).

  bench/postgres/refresh.sh [SIZES="1000000 10000000"]
"""
import json, os, statistics, subprocess, sys, time, urllib.request

BIN = os.environ["IPQUEST_BIN"]
URL = os.environ["IPQUEST_POSTGRES_URL"].split("?")[0]
BASE = URL.rsplit("/", 1)[0]
OUT = "bench/out/postgres"
SIZES = [int(s) for s in (sys.argv[1:] or ["1000000", "10000000"])]


def psql(db, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{BASE}/{db}", "-c", sql], check=True, stdout=subprocess.DEVNULL)


def get(port, path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start(db, label):
    out = open(f"{OUT}/refresh-{label}.out", "w")
    log = open(f"{OUT}/refresh-{label}.log", "w")
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--trusted-proxy", "127.0.0.1/32",
                          "--database", f"{BASE}/{db}?sslmode=disable&pool_size=4",
                          "--config", f"{OUT}/refresh.yaml"], stdout=out, stderr=log)
    while True:
        if p.poll() is not None:
            sys.exit(f"instance {label} exited: see {OUT}/refresh-{label}.log")
        text = open(f"{OUT}/refresh-{label}.out").read()
        if "listening" in text:
            return p, int(text.strip().rsplit(":", 1)[1]), time.monotonic() - t0
        time.sleep(0.05)


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rebuild_seconds(port):
    """Mean snapshot build time from the Prometheus summary."""
    _, body = get(port, "/metrics")
    total = count = 0.0
    for line in body.decode().splitlines():
        if line.startswith("ipquest_snapshot_build_duration_sum"):
            total = float(line.split()[-1])
        elif line.startswith("ipquest_snapshot_build_duration_count"):
            count = float(line.split()[-1])
    return total / count if count else float("nan")  # the histogram sums seconds


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(f"{OUT}/refresh.yaml", "w") as f:
        f.write("rate_limit: { burst: 1000000, per_second: 1000000 }\nlocation: { database: '' }\n")
    print(f"{'claims':>11} {'fill s':>7} {'load s':>7} {'latency ms (median/max)':>24} {'rebuild ms':>10} {'RSS MB':>7}")
    for n in SIZES:
        db = f"refresh{n}"
        psql("postgres", f"DROP DATABASE IF EXISTS {db}")
        psql("postgres", f"CREATE DATABASE {db}")
        subprocess.run([BIN, "migrate", "--database", f"{BASE}/{db}?sslmode=disable"], check=True, stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        now = int(time.time())
        # A bijection i -> i * 2654435761 mod 2^32 spreads addresses over every block.
        psql(db, f"""
            INSERT INTO claims (ip, name, claimed_at, seq, writer)
            SELECT (i * 2654435761) % 4294967296, 'p' || (i % 1000), {now} - (i * 7919) % (60 * 86400), i, 0
            FROM generate_series(1, {n}::bigint) AS i;
            UPDATE ipquest_state SET last_seq = {n};""")
        psql(db, "VACUUM ANALYZE claims")
        fill = time.monotonic() - t0
        a, port_a, _ = start(db, "a")
        b, port_b, load = start(db, "b")
        try:
            latencies = []
            for k in range(20):
                ip = f"203.0.113.{k + 1}"
                name = f"probe{k}"
                sent = time.monotonic()
                status, _ = get(port_a, f"/claim?name={name}", {"X-Forwarded-For": ip, "Accept": "application/json"})
                assert status == 200, status
                while True:
                    _, body = get(port_b, "/api/leaderboard")
                    if f'"{name}"'.encode() in body:
                        break
                    if time.monotonic() - sent > 30:
                        sys.exit(f"probe {k} not visible on instance B after 30 s")
                    time.sleep(0.005)
                latencies.append(time.monotonic() - sent)
            rebuild = rebuild_seconds(port_b)
            print(f"{n:>11,} {fill:>7.1f} {load:>7.1f} {statistics.median(latencies) * 1000:>12.0f} / {max(latencies) * 1000:<9.0f}"
                  f" {rebuild * 1000:>10.1f} {rss_mb(b.pid):>7.0f}", flush=True)
        finally:
            for p in (a, b):
                p.terminate()
                p.wait(timeout=60)
        psql("postgres", f"DROP DATABASE {db}")


main()
