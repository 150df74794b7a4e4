#!/usr/bin/env python3
"""A slow trickle of claims on a loaded board (issue 24: 4 claims/s must cost under 5 % of a
core, and every page answer in 5 ms at the 99th percentile meanwhile).

Two windows of SECONDS each, both with one thread sending RATE fresh-address claims a second
(X-Forwarded-For from 198.18.0.0/15, so the server needs --trusted-proxy 127.0.0.0/8): in the
first nothing else, and the server's CPU is measured (utime + stime from /proc/PID/stat, as a
share of one core); in the second another thread reads each PATH in turn over a keep-alive
connection. Prints "cpu", the share, and the claims answered 200 / otherwise; then one line per
path: reads, median and p99 ms.

    trickle.py PORT PID SECONDS RATE PATH...
"""
import http.client, os, sys, threading, time

port, pid, seconds, rate, paths = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
ticks = os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


stop = threading.Event()
claims = [0, 0]
sent = [0]  # addresses used so far: the second window goes on with fresh ones


def trickle():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    k, started = sent[0], time.monotonic()
    while not stop.is_set():
        due = started + (k - sent[0]) / rate
        if time.monotonic() < due:
            time.sleep(due - time.monotonic())  # pacing the claims is the point here
            continue
        ip = f"198.{18 + (k >> 16) % 2}.{(k >> 8) & 255}.{k & 255}"
        conn.request("GET", f"/claim?name=trickle{k % 7}", headers={"X-Forwarded-For": ip, "Accept": "application/json"})
        r = conn.getresponse()
        r.read()
        claims[0 if r.status == 200 else 1] += 1
        k += 1
    sent[0] = k
    conn.close()


times = {p: [] for p in paths}
def reader():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        t0 = time.perf_counter()
        conn.request("GET", path)
        conn.getresponse().read()
        times[path].append((time.perf_counter() - t0) * 1000)
        i += 1
        time.sleep(0.01)  # about 100 reads a second, spread over the paths
    conn.close()


def window(with_reads):
    stop.clear()
    threads = [threading.Thread(target=trickle)] + ([threading.Thread(target=reader)] if with_reads else [])
    for t in threads: t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads: t.join()


c0, t0 = cpu_seconds(), time.monotonic()
window(False)
c1, t1 = cpu_seconds(), time.monotonic()
window(True)
print(f"cpu\t{(c1 - c0) / (t1 - t0) * 100:.1f}\t{claims[0]}\t{claims[1]}")
for path, ts in times.items():
    ts.sort()
    if ts:
        print(f"{path}\t{len(ts)}\t{ts[len(ts) // 2]:.2f}\t{ts[min(len(ts) - 1, int(len(ts) * 0.99))]:.2f}")
