#!/usr/bin/env python3
"""Latency of GET PATH on 127.0.0.1:PORT over one keep-alive connection: N timed requests after
3 untimed ones. Prints one line per path: status, body bytes, median and p99 in ms.

    latency.py PORT N PATH...
"""
import http.client
import sys
import time

port, n, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
for path in paths:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times, size, status = [], 0, 0
    for i in range(n + 3):
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        status, size = response.status, len(body)
        if i >= 3:
            times.append(elapsed * 1000)
    conn.close()
    times.sort()
    median = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{path}\t{status}\t{size}\t{median:.2f}\t{p99:.2f}")
