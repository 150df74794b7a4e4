#!/usr/bin/env python3
"""How long a PostgreSQL instance takes to join, at N stored claims (issue 24: within 10 s).

For each size N: a fresh database gets N claims shaped like the real game
(bench/scale/gen_claims.c, copied in with COPY), and one `ipquest serve` instance with
`checkpoint.path` set is started three times:
  first    no checkpoint yet: start until listening (every row is loaded), peak RSS
  restart  after a graceful stop and LATER rows committed by "other instances" meanwhile
           (new addresses and re-claims, with seq above the checkpoint's): start until
           listening, from the checkpoint plus those rows
  after    the same, once more, after `kill -9` (the checkpoint left by the last one)
Each start is checked: /healthz's address count equals the table's, and the log says where
the board came from.

  bench/postgres/join.sh [SIZE…]
"""
import json, os, signal, subprocess, sys, time, urllib.request

BIN = os.environ["IPQUEST_BIN"]
URL = os.environ["IPQUEST_POSTGRES_URL"].split("?")[0]
BASE = URL.rsplit("/", 1)[0]
OUT = "bench/out/postgres"
LATER = int(os.environ.get("LATER", "100000"))
SIZES = [int(s) for s in (sys.argv[1:] or ["1000000", "10000000"])]


def psql(db, sql, stdin=None):
    r = subprocess.run(["psql", "-qAt", "-v", "ON_ERROR_STOP=1", f"{BASE}/{db}", "-c", sql],
                       check=True, stdout=subprocess.PIPE, stdin=stdin)
    return r.stdout.decode().strip()


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
        return r.read()


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(db, label):
    out = open(f"{OUT}/join-{label}.out", "w")
    log = f"{OUT}/join-{label}.log"
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--database", f"{BASE}/{db}?sslmode=disable&pool_size=4",
                          "--config", f"{OUT}/join.yaml"], stdout=out, stderr=open(log, "w"))
    while True:
        if p.poll() is not None:
            sys.exit(f"instance exited: see {log}")
        text = open(f"{OUT}/join-{label}.out").read()
        if "listening" in text:
            took = time.monotonic() - t0
            port = int(text.strip().rsplit(":", 1)[1])
            health = json.loads(get(port, "/healthz"))
            source = "checkpoint" if "board resumed from checkpoint" in open(log).read() else "table"
            return p, port, took, health["addresses"], source
        time.sleep(0.02)


def main():
    with open(f"{OUT}/join.yaml", "w") as f:
        f.write(f"checkpoint: {{ path: '{os.path.abspath(OUT)}/join.board', interval_seconds: 300 }}\nlocation: {{ database: '' }}\n")
    print(f"{'claims':>11} {'fill s':>7} {'start':>8} {'join s':>7} {'from':>10} {'peak RSS MB':>11} {'addresses ok':>12}")
    for n in SIZES:
        db = f"join{n}"
        psql("postgres", f"DROP DATABASE IF EXISTS {db}")
        psql("postgres", f"CREATE DATABASE {db}")
        subprocess.run([BIN, "migrate", "--database", f"{BASE}/{db}?sslmode=disable"], check=True, stdout=subprocess.DEVNULL)
        if os.path.exists(f"{OUT}/join.board"):
            os.remove(f"{OUT}/join.board")
        t0 = time.monotonic()
        psql(db, "CREATE UNLOGGED TABLE staging (ip inet, name text, claimed_at bigint, country text, asn bigint, provider text)")
        gen = subprocess.Popen([f"{OUT}/gen_claims", "-n", str(n), "-t", str(int(time.time()) - 120)], stdout=subprocess.PIPE)
        psql(db, "COPY staging FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', HEADER true)", stdin=gen.stdout)
        gen.wait()
        psql(db, f"""
            INSERT INTO claims (ip, name, claimed_at, country, asn, provider, seq, writer)
            SELECT ip - '0.0.0.0'::inet, name, claimed_at, country, asn, provider, row_number() OVER (), 0 FROM staging;
            UPDATE ipquest_state SET last_seq = (SELECT max(seq) FROM claims);
            DROP TABLE staging;""")
        psql(db, "VACUUM ANALYZE claims")
        fill = time.monotonic() - t0

        def later(k):
            # Other instances' commits while this one is away: LATER rows, half new addresses in
            # 198.18.0.0/15, half re-claims of stored ones, with seq above everything stored.
            half = LATER // 2
            psql(db, f"""
                WITH s AS (SELECT last_seq AS base FROM ipquest_state WHERE id = 1)
                INSERT INTO claims (ip, name, claimed_at, country, asn, provider, seq, writer)
                SELECT 3323068416 + {k} * {LATER} + i, 'later{k}_' || (i % 100), extract(epoch FROM now())::bigint,
                       'NL', 1136, NULL, s.base + i, 1
                FROM generate_series(1, {half}) AS i, s;
                WITH s AS (SELECT last_seq + {half} AS base FROM ipquest_state WHERE id = 1),
                     x AS (SELECT ip, row_number() OVER (ORDER BY seq) AS rn FROM claims WHERE writer = 0
                           ORDER BY seq LIMIT {half})
                UPDATE claims c SET name = 'later{k}_' || (x.rn % 100), claimed_at = extract(epoch FROM now())::bigint,
                       seq = s.base + x.rn, writer = 1
                FROM x, s WHERE c.ip = x.ip;
                UPDATE ipquest_state SET last_seq = last_seq + 2 * {half};""")

        rows = lambda: int(psql(db, "SELECT count(*) FROM claims"))
        for label in ("first", "restart", "after-kill"):
            if label != "first":
                later(1 if label == "restart" else 2)
            p, port, took, addresses, source = start(db, f"{n}-{label}")
            expected = rows()
            print(f"{n:>11,} {fill:>7.1f} {label:>8} {took:>7.2f} {source:>10} {peak_rss_mb(p.pid):>11.0f} {str(addresses == expected):>12}", flush=True)
            if label == "restart":
                p.send_signal(signal.SIGKILL)
            else:
                p.terminate()  # graceful: the checkpoint is written at shutdown
            p.wait(timeout=600)
        psql("postgres", f"DROP DATABASE {db}")


main()
