"""Real reverse proxies (nginx, HAProxy) in front of a real `ipquest serve`, all on loopback.

Every process is started in the foreground by the test, in its own process group, with its
configuration, pid file, logs and temporary files in a per-stack temporary directory, and
gets SIGTERM if the test process dies (PR_SET_PDEATHSIG). `Stack.stop()` always reaps them.

Clients bind their sockets to chosen 127.x.y.z source addresses (all local on Linux), so the
true source of every request is known. The proxies reach the server from 127.0.0.1, the only
trusted proxy; clients never use 127.0.0.1 unless a test plays a (misbehaving) proxy itself.
"""
from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

import sys
import functools

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pysupport  # noqa: E402

PROXY_ADDRESS = "127.0.0.1"          # where the proxies connect to the server from
TRUSTED = "127.0.0.1/32"
HEALTH_SOURCE = "127.0.251.1"        # proxy readiness checks come from here (its own /24)
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_tool(name: str) -> str | None:
    """Debian installs nginx and haproxy in /usr/sbin, which is not on every user's PATH."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)), None)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# HTTP client with a chosen source address and repeatable headers.

@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.text[:300]!r}>"


def http_get(port: int, path: str, headers: list[tuple[str, str]] | tuple = (), source: str | None = None,
             timeout: float = 10.0) -> Response:
    """One GET on a fresh connection to 127.0.0.1:port, from `source` (bound before connecting).
    Headers are sent in order, each as its own field line, so a name may repeat."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


# Server and proxy probes may meet a socket not yet listening or a half-written answer: "not yet".
wait_until = functools.partial(pysupport.wait_until, tolerate=(OSError, http.client.HTTPException, ValueError))


# --------------------------------------------------------------------------------------------
# Processes.

class Process:
    """A foreground child in its own process group, output to a log file."""

    def __init__(self, name: str, argv: list[str], directory: str):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(directory, f"{name}.log")
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=directory, start_new_session=True, preexec_fn=_die_with_parent)

    def log(self, limit: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: {' '.join(self.argv)}\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 5 s; always waits for the leader."""
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Anything the leader forked that is still in its group.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(timeout=5)


def _config_yaml(trusted: list[str], header: str | None, proxy_protocol: bool, extra: str) -> str:
    lines = [f"trusted_proxies: [{', '.join(trusted)}]"]
    if header:
        lines.append(f"real_ip_header: {header}")
    if proxy_protocol:
        lines.append("proxy_protocol: true")
    return "\n".join(lines) + "\n" + extra


class GameServer:
    """`ipquest serve` on 127.0.0.1, a fresh SQLite file, trusting 127.0.0.1/32."""

    def __init__(self, binary: str, directory: str, header: str | None, proxy_protocol: bool,
                 via_yaml: bool = False, config_extra: str = ""):
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.database = os.path.join(directory, "game.sqlite")
        args = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database", self.database,
                "--durability", "normal"]
        config = config_extra
        if via_yaml:
            config = _config_yaml([TRUSTED], header, proxy_protocol, config_extra)
        else:
            args += ["--trusted-proxy", TRUSTED]
            if header:
                args += ["--real-ip-header", header]
            if proxy_protocol:
                args += ["--proxy-protocol"]
        if config:
            path = os.path.join(directory, "serve.yaml")
            with open(path, "w") as f:
                f.write(config)
            args += ["--config", path]
        self.argv = args
        self.process: Process | None = None
        self._reader = 0

    def start(self) -> None:
        self.process = Process("ipquest", self.argv, self.directory)
        # Straight to the server from an untrusted address (not through a proxy, which with
        # PROXY protocol would be required on every connection).
        wait_until(lambda: self.get("/healthz").status == 200, "ipquest /healthz", START_TIMEOUT, 0.1, self.process)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def reader_source(self) -> str:
        """Reads come from a new /24 each time (127.250.N.1), so that polling never drains a
        rate-limit bucket that a test is measuring."""
        self._reader += 1
        return f"127.250.{self._reader % 250}.{1 + self._reader // 250 % 250}"

    def get(self, path: str, headers=(), source: str | None = None) -> Response:
        return http_get(self.port, path, headers, source or self.reader_source())

    def recent(self) -> list[dict]:
        r = self.get("/api/recent")
        assert r.status == 200, r
        return r.json()["claims"]

    def wait_claim(self, ip: str, name: str, timeout: float = 5.0) -> list[dict]:
        """Waits until /api/recent shows `ip` owned by `name`; returns the claims listed then."""
        found: list[dict] = []

        def shown():
            nonlocal found
            found = self.recent()
            return any(c["ip"] == ip and c["name"] == name for c in found)
        try:
            wait_until(shown, f"claim of {ip} by {name} in /api/recent", timeout, 0.05, self.process)
        except TimeoutError:
            raise AssertionError(f"/api/recent never showed {ip} owned by {name}; it shows "
                                 f"{[(c['ip'], c['name']) for c in found]}")
        return found

    def claim_direct(self, source: str, name: str) -> Response:
        """A claim from an untrusted address straight to the server (no proxy)."""
        return self.get("/claim?name=" + urllib.parse.quote(name, safe=""), [("Accept", "application/json")], source)


# --------------------------------------------------------------------------------------------
# Proxies.

NGINX_CONF = """\
# nginx for the IPQuest proxy tests: foreground, everything under {dir}.
worker_processes 1;
master_process off;    # one process: PR_SET_PDEATHSIG then covers all of nginx
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/nginx-access.log;
    client_body_temp_path {dir}/nginx-tmp/body;
    proxy_temp_path {dir}/nginx-tmp/proxy;
    fastcgi_temp_path {dir}/nginx-tmp/fastcgi;
    uwsgi_temp_path {dir}/nginx-tmp/uwsgi;
    scgi_temp_path {dir}/nginx-tmp/scgi;
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {proxy_address};
            proxy_set_header Host $host;
{lines}
        }}
    }}
}}
"""

HAPROXY_CONF = """\
# HAProxy for the IPQuest proxy tests: foreground (-db), no state outside {dir}.
global
    maxconn 256
    log stderr format raw local0 info
defaults
    mode {mode}
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind 127.0.0.1:{listen}
{frontend}
    default_backend game
backend game
    server ipquest 127.0.0.1:{upstream} source {proxy_address} {server}
"""


@dataclass
class Setup:
    """One proxy in front of the server, and how the server is told to read it."""
    id: str
    proxy: str                       # "nginx" or "haproxy"
    header: str | None               # --real-ip-header, or None with PROXY protocol
    proxy_protocol: bool = False
    nginx_lines: list[str] = field(default_factory=list)
    haproxy_mode: str = "http"
    haproxy_frontend: list[str] = field(default_factory=list)
    haproxy_server: str = ""
    doc: str = ""

    def proxy_config(self, directory: str, listen: int, upstream: int) -> str:
        if self.proxy == "nginx":
            return NGINX_CONF.format(dir=directory, listen=listen, upstream=upstream, proxy_address=PROXY_ADDRESS,
                                     lines="\n".join("            " + line for line in self.nginx_lines))
        return HAPROXY_CONF.format(dir=directory, listen=listen, upstream=upstream, proxy_address=PROXY_ADDRESS,
                                   mode=self.haproxy_mode, server=self.haproxy_server,
                                   frontend="\n".join("    " + line for line in self.haproxy_frontend))


class Proxy:
    def __init__(self, setup: Setup, tool: str, directory: str, upstream: int):
        self.setup = setup
        self.tool = tool
        self.directory = directory
        self.port = free_port()
        self.config_path = os.path.join(directory, f"{setup.proxy}.conf")
        with open(self.config_path, "w") as f:
            f.write(setup.proxy_config(directory, self.port, upstream))
        if setup.proxy == "nginx":
            for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                os.makedirs(os.path.join(directory, "nginx-tmp", sub), exist_ok=True)
            # -e: the log for errors before the configuration is read (else /var/log/nginx).
            self.argv = [tool, "-p", directory, "-c", self.config_path, "-e", os.path.join(directory, "nginx-start.log"),
                         "-g", "daemon off;"]
        else:
            self.argv = [tool, "-f", self.config_path, "-db"]
        self.process: Process | None = None

    def start(self) -> None:
        self.process = Process(self.setup.proxy, self.argv, self.directory)

        def listening():
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(listening, f"{self.setup.proxy} listening on {self.port}", START_TIMEOUT, 0.05, self.process)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def log(self) -> str:
        text = self.process.log() if self.process else ""
        for extra in ("nginx-error.log", "nginx-start.log"):
            p = os.path.join(self.directory, extra)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    text += f"\n--- {extra}\n" + f.read()[-3000:]
        return text


class Stack:
    """A proxy (nginx or HAProxy) in front of `ipquest serve`, in one temporary directory."""

    def __init__(self, setup: Setup, binary: str, tools: dict[str, str], via_yaml: bool = False, config_extra: str = ""):
        self.setup = setup
        self.directory = tempfile.mkdtemp(prefix=f"ipquest-proxy-{setup.id}-")
        self.server = GameServer(binary, self.directory, setup.header, setup.proxy_protocol, via_yaml, config_extra)
        self.proxy = Proxy(setup, tools[setup.proxy], self.directory, self.server.port)

    def start(self) -> "Stack":
        try:
            self.server.start()
            self.proxy.start()
            # Traffic flows end to end (from an untrusted address of its own /24).
            wait_until(lambda: self.via_proxy("/healthz", source=HEALTH_SOURCE).status == 200,
                       f"/healthz through {self.setup.id}", START_TIMEOUT, 0.1, self.proxy.process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.proxy.stop()
        finally:
            self.server.stop()
            if os.environ.get("PROXY_TEST_KEEP") == "1":
                print(f"kept {self.directory}")
            else:
                shutil.rmtree(self.directory, ignore_errors=True)

    def via_proxy(self, path: str, headers=(), source: str | None = None) -> Response:
        return http_get(self.proxy.port, path, headers, source)

    def claim(self, name: str, source: str, headers=(), accept: str = "application/json") -> Response:
        return self.via_proxy("/claim?name=" + urllib.parse.quote(name, safe=""),
                              [("Accept", accept)] + list(headers), source)

    def logs(self) -> str:
        return (f"--- ipquest ({' '.join(self.server.argv)})\n{self.server.process.log() if self.server.process else ''}\n"
                f"--- {self.setup.proxy}\n{self.proxy.log()}")


# The set-ups. Trusted proxy: 127.0.0.1/32, where every proxy connects to the server from.
SETUPS = [
    Setup("nginx-xff", "nginx", "x-forwarded-for",
          nginx_lines=["proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"],
          doc="nginx appends $remote_addr to the client's X-Forwarded-For"),
    Setup("nginx-x-real-ip", "nginx", "x-real-ip",
          nginx_lines=["proxy_set_header X-Real-IP $remote_addr;"],
          doc="nginx sets X-Real-IP and passes every other client header on untouched"),
    Setup("haproxy-forwardfor", "haproxy", "x-forwarded-for",
          haproxy_frontend=["option forwardfor"],
          doc="HAProxy mode http appends its own X-Forwarded-For line after the client's"),
    Setup("haproxy-forwarded", "haproxy", "forwarded",
          haproxy_frontend=["http-request add-header Forwarded for=%[src]"],
          doc="HAProxy mode http appends a Forwarded: for= line (RFC 7239) after the client's "
              "(`option forwarded` needs HAProxy >= 2.7; Debian 12 has 2.6)"),
    Setup("haproxy-proxy-v2", "haproxy", None, proxy_protocol=True, haproxy_mode="tcp", haproxy_server="send-proxy-v2",
          doc="HAProxy mode tcp, PROXY protocol v2; the HTTP bytes pass untouched"),
    Setup("haproxy-proxy-v1", "haproxy", None, proxy_protocol=True, haproxy_mode="tcp", haproxy_server="send-proxy",
          doc="HAProxy mode tcp, PROXY protocol v1 (text); the HTTP bytes pass untouched"),
]
SETUP_IDS = [s.id for s in SETUPS]


def setup_by_id(setup_id: str) -> Setup:
    return next(s for s in SETUPS if s.id == setup_id)
