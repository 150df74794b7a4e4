"""Seeding a real `ipquest serve` and an independent model of what the pages must show.

Claims reach the server as real HTTP requests: from many 127.x.y.z source addresses (the client
socket is bound to that address), and, for blocks other than 127, from 127.0.0.254 acting as a
trusted proxy that names the client in X-Forwarded-For (the browser, at 127.0.0.1, is an
ordinary client: a trusted proxy is never taken for the client it forwards). Names that only storage can hold (old
timestamps, odd characters) go in through `ipquest claims import` before the server starts.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field

PERIOD_SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "all": None}
# The trusted proxy the seeding relays through (not 127.0.0.1, where the browser comes from).
PROXY = "127.0.0.254"
RULE = "a name is 1\u201340 characters of ASCII letters, digits and @ / : . ^ + ! - _ *"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def player_href(name: str) -> str:
    quoted = urllib.parse.quote(name, safe="-._~")
    if name in (".", ".."):
        return "/user.html?name=" + quoted
    return "/players/" + quoted


def ordinal(n: int) -> str:
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def fnv1a32(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def hue_class(name: str) -> int:
    return fnv1a32(name) % 72


@dataclass
class Model:
    """Current owner per address, the same rules as the game: the last claim wins."""

    owners: dict[str, tuple[str, int]] = field(default_factory=dict)

    def claim(self, ip: str, name: str, at: int) -> None:
        self.owners[ip] = (name, at)

    def counts(self, period: str, now: int) -> dict[int, dict[str, int]]:
        length = PERIOD_SECONDS[period]
        out: dict[int, dict[str, int]] = {}
        for ip, (name, at) in self.owners.items():
            if length is not None and at < now - length:
                continue
            block = int(ip.split(".")[0])
            out.setdefault(block, {}).setdefault(name, 0)
            out[block][name] += 1
        return out

    def tiles(self, now: int) -> dict[int, tuple[str | None, bool, int]]:
        """block -> (holder or None, tied, top count)"""
        out = {}
        counts = self.counts("all", now)
        for b in range(256):
            c = sorted(counts.get(b, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            if not c:
                out[b] = (None, False, 0)
            elif len(c) > 1 and c[0][1] == c[1][1]:
                out[b] = (None, True, c[0][1])
            else:
                out[b] = (c[0][0], False, c[0][1])
        return out

    def leaderboard(self, period: str, now: int) -> list[tuple[int, str, int, int]]:
        """[(rank, name, blocks held, addresses)] ranked like the server."""
        counts = self.counts(period, now)
        held: dict[str, int] = {}
        totals: dict[str, int] = {}
        for b, per in counts.items():
            ranked = sorted(per.items(), key=lambda kv: -kv[1])
            if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
                held[ranked[0][0]] = held.get(ranked[0][0], 0) + 1
            for n, c in per.items():
                totals[n] = totals.get(n, 0) + c
        rows = sorted(totals, key=lambda n: (-held.get(n, 0), -totals[n], n))
        out = []
        for i, n in enumerate(rows):
            rank = i + 1
            if i > 0 and (held.get(n, 0), totals[n]) == (out[-1][2], out[-1][3]):
                rank = out[-1][0]
            out.append((rank, n, held.get(n, 0), totals[n]))
        return out

    def player_lines(self, name: str, period: str, now: int) -> list[str]:
        lines = []
        for b, per in sorted(self.counts(period, now).items()):
            if name not in per:
                continue
            mine = per[name]
            above = sum(1 for n, c in per.items() if n != name and c > mine)
            tied = any(c == mine for n, c in per.items() if n != name)
            noun = "address" if mine == 1 else "addresses"
            lines.append(f"{'tied ' if tied else ''}{ordinal(above + 1)} in {b}.0.0.0/8 with {mine} {noun}")
        return lines

    def area_leaders(self, block: int) -> dict[int, str | None]:
        """/24 index within the block -> leading name (None when tied)."""
        per: dict[int, dict[str, int]] = {}
        for ip, (name, _) in self.owners.items():
            o = [int(p) for p in ip.split(".")]
            if o[0] != block:
                continue
            area = o[1] << 8 | o[2]
            per.setdefault(area, {}).setdefault(name, 0)
            per[area][name] += 1
        out = {}
        for area, c in per.items():
            ranked = sorted(c.items(), key=lambda kv: -kv[1])
            out[area] = None if len(ranked) > 1 and ranked[0][1] == ranked[1][1] else ranked[0][0]
        return out


def _die_with_parent() -> None:
    """The server gets SIGTERM if the test process dies, so no server outlives a killed run."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Server:
    """A real `ipquest serve` process on a free port; `stop()` always reaps it."""

    def __init__(self, binary: str, directory: str, model: Model):
        self.binary = binary
        self.directory = directory
        self.database = os.path.join(directory, "game.sqlite")
        self.port = free_port()
        self.model = model
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(directory, "serve.log")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def import_claims(self, rows: list[tuple[str, str, int]]) -> subprocess.CompletedProcess:
        path = os.path.join(self.directory, f"import-{len(os.listdir(self.directory))}.tsv")
        with open(path, "w") as f:
            f.write("ip\tname\tclaimed_at\n")
            for ip, name, at in rows:
                f.write(f"{ip}\t{name}\t{at}\n")
        result = subprocess.run([self.binary, "claims", "import", "--database", self.database, path],
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            for ip, name, at in rows:
                self.model.claim(ip, name, at)
        return result

    def write_intelligence(self) -> str:
        """A location database (written by `ipquest location write` from a dump) that puts
        127.1.0.0/16 in DE (AS3320) and 127.2.0.0/16 in the US (AS16509), AWS's published
        ranges format claiming 127.2.0.0/17, and a config file that uses both. Returns its path."""
        dump = os.path.join(self.directory, "location.txt")
        with open(dump, "w") as f:
            f.write("# Vendor: IPQuest web tests\n\n"
                    "aut-num:        AS3320\nname:           Deutsche Telekom AG\n\n"
                    "aut-num:        AS16509\nname:           Amazon.com, Inc.\n\n"
                    "net:            127.1.0.0/16\ncountry:        DE\naut-num:        3320\n\n"
                    "net:            127.2.0.0/16\ncountry:        US\naut-num:        16509\n")
        database = os.path.join(self.directory, "location.db")
        result = subprocess.run([self.binary, "location", "write", dump, database], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        ranges = os.path.join(self.directory, "ip-ranges.json")
        with open(ranges, "w") as f:
            json.dump({"syncToken": "1", "createDate": "2026-11-01-00-00-00", "ipv6_prefixes": [],
                       "prefixes": [{"ip_prefix": "127.2.0.0/17", "region": "us-east-1", "service": "EC2",
                                     "network_border_group": "us-east-1"}]}, f)
        config = os.path.join(self.directory, "serve.yaml")
        with open(config, "w") as f:
            f.write(f"location: {{database: {json.dumps(database)}}}\ndatacenter: {{sources: [{json.dumps('aws=' + ranges)}]}}\n")
        return config

    def start(self, config: str | None = None) -> None:
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database", self.database,
             "--durability", "normal", "--trusted-proxy", PROXY + "/32"] + (["--config", config] if config else []),
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ipquest serve exited with {self.process.returncode}: {open(self.log_path).read()}")
            try:
                status, _, _ = self.get("/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ipquest serve did not answer /healthz within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def get(self, path: str, headers: dict | None = None, source: str | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def claim_from(self, source: str, name: str) -> dict:
        """A claim over a socket bound to `source` (any 127.x.y.z works on loopback)."""
        status, _, body = self.get("/claim?name=" + urllib.parse.quote(name, safe=""),
                                   {"Accept": "application/json"}, source=source)
        assert status == 200, (status, body)
        answer = json.loads(body)
        assert answer["ip"] == source, answer
        self.model.claim(source, name, int(time.time()))
        return answer

    def claim_via_proxy(self, client: str, name: str) -> dict:
        """A claim relayed by the trusted proxy (PROXY) for `client`."""
        status, _, body = self.get("/claim?name=" + urllib.parse.quote(name, safe=""),
                                   {"Accept": "application/json", "X-Forwarded-For": client}, source=PROXY)
        assert status == 200, (status, body)
        answer = json.loads(body)
        assert answer["ip"] == client, answer
        self.model.claim(client, name, int(time.time()))
        return answer

    def wait_snapshot(self) -> None:
        """Snapshots are rebuilt within 200 ms of a change; wait until /api/recent reflects the model."""
        time.sleep(0.5)
