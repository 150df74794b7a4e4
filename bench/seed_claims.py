#!/usr/bin/env python3
"""A realistic board for benchmarks: COUNT distinct random IPv4 addresses claimed by PLAYERS
players over the last 40 days, as a `ipquest claims import` TSV file (fixed seed).

  python3 bench/seed_claims.py OUT.tsv [COUNT=200000] [PLAYERS=2000]
"""
import random, sys, time

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
players = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000
random.seed(7)
now = int(time.time())
seen = set()
with open(out, "w") as f:
    f.write("ip\tname\tclaimed_at\n")
    while len(seen) < count:
        ip = random.getrandbits(32)
        if ip in seen:
            continue
        seen.add(ip)
        f.write(f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}\tplayer{random.randrange(players)}\t{now - random.randrange(40 * 86400)}\n")
