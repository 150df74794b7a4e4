#!/usr/bin/env python3
"""Exit 0 when the server on 127.0.0.1:PORT holds exactly EXPECTED addresses: /healthz's count
and the sum over /score (every player's [block, count] pairs) both equal EXPECTED. Prints what
it saw.

    check_scores.py PORT EXPECTED
"""
import json
import sys
import urllib.request

port, expected = int(sys.argv[1]), int(sys.argv[2])
base = f"http://127.0.0.1:{port}"
with urllib.request.urlopen(base + "/healthz", timeout=60) as r:
    health = json.load(r)
with urllib.request.urlopen(base + "/score", timeout=120) as r:
    score = json.load(r)["score"]
total = sum(count for blocks in score.values() for _, count in blocks)
print(f"healthz addresses={health.get('addresses')} players={health.get('players')}; /score total={total} over {len(score)} players")
sys.exit(0 if health.get("addresses") == expected and total == expected else 1)
