"""A real `ipquest serve` (or `ipquest tunnel`) on loopback for the operator-facing tests.

Every wait polls an observable state with a deadline; every process is reaped by `stop()` and
dies with the test process (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import ctypes
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pysupport  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary() -> str:
    path = os.environ.get("IPQUEST_BIN", os.path.join(REPO, ".build", "debug", "ipquest"))
    if not os.access(path, os.X_OK):
        raise AssertionError(f"no ipquest binary at {path}: build it first (swift build) or set IPQUEST_BIN")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """`pysupport.wait_until` with this suite's argument order (timeout before what)."""
    return pysupport.wait_until(predicate, what, timeout, interval)


class Server:
    """`ipquest serve` on a free port with the given database and extra arguments."""

    def __init__(self, directory: str, database: str | None = None, args: list[str] | None = None,
                 config: str | None = None):
        self.directory = directory
        self.database = database or os.path.join(directory, "game.sqlite")
        self.port = free_port()
        self.args = args or []
        self.config = config
        self.stdout_path = os.path.join(directory, f"serve-{self.port}.out")
        self.stderr_path = os.path.join(directory, f"serve-{self.port}.err")
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return ([binary(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database", self.database,
                 "--trusted-proxy", "127.0.0.1/32"] + (["--config", self.config] if self.config else []) + self.args)

    def start(self, timeout: float = 60) -> "Server":
        self.process = subprocess.Popen(self.command(), stdout=open(self.stdout_path, "w"),
                                        stderr=open(self.stderr_path, "w"), preexec_fn=_die_with_parent)

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"ipquest serve exited with {self.process.returncode}: {self.stderr()}")
            try:
                return self.get("/healthz")[0] == 200
            except OSError:
                return False
        wait_until(up, timeout, "ipquest serve to answer /healthz")
        return self

    def stderr(self) -> str:
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode if self.process else None

    def get(self, path: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def claim(self, client: str, name: str) -> tuple[int, bytes]:
        """A claim relayed by the trusted proxy 127.0.0.1 for `client`."""
        status, _, body = self.get("/claim?name=" + urllib.parse.quote(name, safe=""),
                                   {"Accept": "application/json", "X-Forwarded-For": client})
        return status, body

    def metrics(self) -> str:
        status, _, body = self.get("/metrics")
        assert status == 200, status
        return body.decode()

    def wait_recent(self, name: str, timeout: float = 10) -> None:
        """Snapshots are rebuilt within 200 ms of a change: poll /api/recent until `name` shows."""
        def shown():
            status, _, body = self.get("/api/recent")
            return status == 200 and any(c["name"] == name for c in json.loads(body)["claims"])
        wait_until(shown, timeout, f"{name} in /api/recent")


def write_intelligence(directory: str) -> str:
    """A location database (`ipquest location write` from a dump) that puts 127.1.0.0/16 and
    11.0.0.0/16 in DE (AS3320), and AWS's range format claiming 11.0.128.0/17; a config file
    using both. Returns the config path."""
    dump = os.path.join(directory, "location.txt")
    with open(dump, "w") as f:
        f.write("# Vendor: IPQuest deploy tests\n\n"
                "aut-num:        AS3320\nname:           Deutsche Telekom AG\n\n"
                "net:            11.0.0.0/16\ncountry:        DE\naut-num:        3320\n")
    database = os.path.join(directory, "location.db")
    result = subprocess.run([binary(), "location", "write", dump, database], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ranges = os.path.join(directory, "ip-ranges.json")
    with open(ranges, "w") as f:
        json.dump({"syncToken": "1", "createDate": "2026-11-01-00-00-00", "ipv6_prefixes": [],
                   "prefixes": [{"ip_prefix": "11.0.128.0/17", "region": "us-east-1", "service": "EC2",
                                 "network_border_group": "us-east-1"}]}, f)
    config = os.path.join(directory, "serve.yaml")
    with open(config, "w") as f:
        f.write(f"location: {{database: {json.dumps(database)}}}\ndatacenter: {{sources: [{json.dumps('aws=' + ranges)}]}}\n")
    return config


def metric_names(text: str) -> set[str]:
    """Every sample name in a Prometheus text exposition."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if m:
                names.add(m.group(0))
    return names
