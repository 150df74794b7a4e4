"""Who is the client behind a real reverse proxy? nginx and HAProxy in front of `ipquest serve`.

Every proxy connects to the server from 127.0.0.1 (`--trusted-proxy 127.0.0.1/32`); clients come
from other 127.x.y.z addresses, bound before connecting, so each request's true source is known.
A claim must be scored to that source, never to the proxy (127.0.0.1) nor to an address the
client wrote into a header; where the chain cannot be read, the claim is refused (400) and
nothing is stored. Rate limits and bans must key on the client's /24, never on the proxy's.

Run: python3 -m pytest -q Tests/proxies   (IPQUEST_BIN picks the binary; `make test` installs
nginx and haproxy).
"""
from __future__ import annotations

import shutil
import socket
import tempfile
import urllib.parse
from dataclasses import dataclass

import pytest

from proxyfixtures import binary, client_net, make_stack, stack, time_limit, tools  # noqa: F401 (fixtures)
from proxyharness import PROXY_ADDRESS, SETUP_IDS, SETUPS, GameServer, Response, Setup, http_get, setup_by_id, wait_until

SPOOFED = {"9.9.9.9", "9.9.9.8", "8.8.8.8", "2001:db8::1", "::ffff:9.9.9.9", PROXY_ADDRESS}


@dataclass(frozen=True)
class Attack:
    id: str
    headers: tuple[tuple[str, str], ...]
    doc: str


ATTACKS = [
    Attack("forwarded-for", (("Forwarded", "for=9.9.9.9"),),
           "the client's own RFC 7239 header"),
    Attack("x-real-ip", (("X-Real-IP", "9.9.9.9"),),
           "the client's own X-Real-IP"),
    Attack("xff-prepend", (("X-Forwarded-For", "9.9.9.9"),),
           "an X-Forwarded-For the proxy appends to"),
    Attack("xff-pretend-proxy", (("X-Forwarded-For", "9.9.9.9, 127.0.0.1"),),
           "a chain ending in the trusted proxy, as if it had already been through it"),
    Attack("forwarded-pretend-proxy", (("Forwarded", "for=9.9.9.9, for=127.0.0.1"),),
           "the same in RFC 7239 form"),
    Attack("forwarded-unknown", (("Forwarded", "for=unknown"),),
           "an unreadable hop (`unknown`) in the client's part of the chain"),
    Attack("forwarded-hidden", (("Forwarded", "for=_hidden"),),
           "an obfuscated hop in the client's part of the chain"),
    Attack("forwarded-ipv6", (("Forwarded", 'for="[2001:db8::1]:80"'),),
           "a quoted, bracketed IPv6 node with a port"),
    Attack("xff-v4-mapped-v6", (("X-Forwarded-For", "::ffff:9.9.9.9"),),
           "an IPv4-mapped IPv6 address (unmapped, it would be 9.9.9.9)"),
    Attack("xff-garbage", (("X-Forwarded-For", "not-an-address"),),
           "garbage in the client's part of the chain"),
    Attack("xff-repeated", (("X-Forwarded-For", "9.9.9.9"), ("X-Forwarded-For", "8.8.8.8, 127.0.0.1")),
           "two X-Forwarded-For field lines"),
    Attack("cf-connecting-ip", (("CF-Connecting-IP", "9.9.9.9"),),
           "Cloudflare's header, not the configured one"),
    Attack("true-client-ip", (("True-Client-IP", "9.9.9.9"),),
           "Akamai's header, not the configured one"),
    Attack("fly-client-ip", (("Fly-Client-IP", "9.9.9.9"),),
           "Fly.io's header, not the configured one"),
    Attack("everything", (("Forwarded", "for=9.9.9.9"), ("X-Forwarded-For", "9.9.9.8, 127.0.0.1"),
                          ("X-Real-IP", "8.8.8.8"), ("CF-Connecting-IP", "9.9.9.9"),
                          ("True-Client-IP", "9.9.9.9"), ("Fly-Client-IP", "9.9.9.9")),
           "every forwarding header at once"),
]

_names = iter(range(1, 10**6))


def new_name(prefix: str) -> str:
    return f"{prefix}{next(_names)}"[:40]


def seen_ip(stack, source: str, headers=()) -> tuple[str, str]:
    """What the server says the client is, through the proxy: (/ip text, /api/ip's ip)."""
    text = stack.via_proxy("/ip", list(headers), source)
    api = stack.via_proxy("/api/ip", list(headers), source)
    assert text.status == 200, f"/ip answered {text}"
    assert api.status == 200, f"/api/ip answered {api}"
    return text.text.strip(), api.json()["ip"]


def assert_scored_to(stack, answer: Response, source: str, name: str) -> None:
    """The JSON claim answer names `source`, and storage has `source` owned by `name` and no other
    address claimed under `name`."""
    assert answer.status == 200, f"claim answered {answer}"
    assert answer.json()["ip"] == source, f"claim scored to {answer.json()['ip']}, true source {source}"
    claims = stack.server.wait_claim(source, name)
    by_name = [c["ip"] for c in claims if c["name"] == name]
    assert by_name == [source], f"{name} owns {by_name} in /api/recent, expected only {source}"
    assert not [c for c in claims if c["ip"] in SPOOFED], f"spoofed address stored: {claims}"


def assert_nothing_stored(server: GameServer, name: str, marker_source: str) -> None:
    """A marker claim made after the refused one shows in /api/recent, so the refused one, had
    it been stored, would show too: it must not, and the player must not exist."""
    marker = new_name("marker")
    r = server.claim_direct(marker_source, marker)
    assert r.status == 200 and r.json()["ip"] == marker_source, f"marker claim answered {r}"
    claims = server.wait_claim(marker_source, marker)
    assert not [c for c in claims if c["name"] == name], f"refused claim was stored: {claims}"
    player = server.get("/api/players/" + urllib.parse.quote(name, safe=""))
    assert player.status == 404, f"/api/players/{name} answered {player}: the refused claim was stored"


# ------------------------------------------------------------------------------------------------
# Through each proxy set-up.

def test_client_seen_through_proxy(stack, client_net):
    """Plain traffic through the proxy: /ip, /api/ip, a text/plain claim and storage all name the
    client's true source address, not the proxy's 127.0.0.1. (The harness's end-to-end check.)"""
    source = client_net(7)
    name = new_name("plain")
    assert seen_ip(stack, source) == (source, source), stack.logs()
    r = stack.claim(name, source, accept="text/plain")
    assert r.status == 200, f"claim answered {r}"
    assert source in r.text and PROXY_ADDRESS not in r.text, f"text claim answer: {r.text!r}"
    stack.server.wait_claim(source, name)
    # JSON, from a second address of the same /24.
    assert_scored_to(stack, stack.claim(name + "j", client_net(8)), client_net(8), name + "j")


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_spoofing_header_scored_to_true_source(stack, attack, client_net):
    """A client behind the proxy sends forwarding headers of its own (see the attack's doc).
    /ip, /api/ip and the claim must name the client's true source address, and storage must have
    that address owned by the claimant: never 127.0.0.1, never the address in the header."""
    source = client_net(7)
    name = new_name(attack.id.replace("-", "")[:20])
    text, api = seen_ip(stack, source, attack.headers)
    assert (text, api) == (source, source), f"{attack.doc}: server sees /ip {text!r}, /api/ip {api!r}; true source {source}"
    r = stack.claim(name, source, attack.headers)
    assert_scored_to(stack, r, source, name)


def test_direct_untrusted_peer_ignores_headers(stack, client_net):
    """A client that bypasses the proxy and talks to the server itself is not trusted: every
    forwarding header it sends is ignored and it is scored to its own TCP address."""
    source = client_net(7)
    name = new_name("direct")
    everything = list(ATTACKS[-1].headers)
    r = http_get(stack.server.port, "/api/ip", everything, source)
    assert r.status == 200 and r.json()["ip"] == source, f"/api/ip answered {r}"
    r = http_get(stack.server.port, "/claim?name=" + name, [("Accept", "application/json")] + everything, source)
    assert_scored_to(stack, r, source, name)


PROXY_PROTOCOL_SETUPS = [s for s in SETUPS if s.proxy_protocol]


@pytest.mark.parametrize("setup_id", [s.id for s in PROXY_PROTOCOL_SETUPS])
def test_client_proxy_protocol_line_not_believed(make_stack, setup_id, client_net):
    """With PROXY protocol, a client that writes its own `PROXY TCP4 9.9.9.9 …` line (through
    HAProxy, after HAProxy's real header; and straight to the server from an untrusted peer)
    is never scored to 9.9.9.9: the line is either refused or the claim goes to the true source."""
    stack = make_stack(setup_by_id(setup_id))
    for port, source in ((stack.proxy.port, client_net(7)), (stack.server.port, client_net(8))):
        name = new_name("pp")
        raw = (f"PROXY TCP4 9.9.9.9 127.0.0.1 4711 80\r\n"
               f"GET /claim?name={name} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n").encode()
        with socket.socket() as s:
            s.settimeout(10)
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(raw)
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass
        head = answer.split(b"\r\n", 1)[0]
        if b" 200 " in head:
            assert source.encode() in answer and b"9.9.9.9" not in answer, f"claim answer {answer!r}"
        assert_nothing_stored_for(stack.server, name, "9.9.9.9", client_net(9))


def assert_nothing_stored_for(server: GameServer, name: str, ip: str, marker_source: str) -> None:
    """After a marker claim shows, neither `ip` nor a spoofed address claimed under `name` is stored."""
    marker = new_name("marker")
    r = server.claim_direct(marker_source, marker)
    assert r.status == 200, f"marker claim answered {r}"
    claims = server.wait_claim(marker_source, marker)
    assert not [c for c in claims if c["ip"] == ip or (c["name"] == name and c["ip"] in SPOOFED)], \
        f"stored from a client's PROXY line: {claims}"


# ------------------------------------------------------------------------------------------------
# A trusted peer (playing a proxy) straight to the server: only the configured header is read, the
# chain is walked from the right, and an unreadable chain refuses the claim.

HEADERS = ["x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip", "fly-client-ip", "true-client-ip"]


@pytest.fixture(scope="module")
def bare_servers(binary):
    """One `ipquest serve` per --real-ip-header, no proxy in front: tests connect from
    127.0.0.1 (trusted) and write the proxy's headers themselves."""
    servers: dict[str, GameServer] = {}
    directories = []
    try:
        for header in HEADERS:
            directory = tempfile.mkdtemp(prefix=f"ipquest-bare-{header}-")
            directories.append(directory)
            servers[header] = GameServer(binary, directory, header, False)
            servers[header].start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


DECOYS = [("Forwarded", "for=9.9.9.9"), ("X-Forwarded-For", "9.9.9.9"), ("X-Real-IP", "9.9.9.9"),
          ("CF-Connecting-IP", "9.9.9.9"), ("Fly-Client-IP", "9.9.9.9"), ("True-Client-IP", "9.9.9.9")]
CONFIGURED_VALUE = {
    "x-forwarded-for": ("X-Forwarded-For", "198.51.100.1, 203.0.113.5, 127.0.0.1"),
    "forwarded": ("Forwarded", 'for=198.51.100.1, for="203.0.113.5:4711";proto=http, for=127.0.0.1'),
    "x-real-ip": ("X-Real-IP", "203.0.113.5"),
    "cf-connecting-ip": ("CF-Connecting-IP", "203.0.113.5"),
    "fly-client-ip": ("Fly-Client-IP", "203.0.113.5"),
    "true-client-ip": ("True-Client-IP", "203.0.113.5"),
}


@pytest.mark.parametrize("header", HEADERS)
def test_trusted_peer_only_configured_header_read(bare_servers, header):
    """From the trusted proxy, only the --real-ip-header header is read: every other forwarding
    header carries 9.9.9.9 and is ignored; a chain is walked from the right past trusted hops
    (127.0.0.1) to the first untrusted one (203.0.113.5), never further left (198.51.100.1)."""
    server = bare_servers[header]
    configured = CONFIGURED_VALUE[header]
    headers = [d for d in DECOYS if d[0].lower() != configured[0].lower()] + [configured]
    r = server.get("/api/ip", headers, source=PROXY_ADDRESS)
    assert r.status == 200 and r.json()["ip"] == "203.0.113.5", f"/api/ip answered {r} for {headers}"
    name = new_name("trusted")
    r = server.get("/claim?name=" + name, [("Accept", "application/json")] + headers, source=PROXY_ADDRESS)
    assert r.status == 200 and r.json()["ip"] == "203.0.113.5", f"claim answered {r}"
    server.wait_claim("203.0.113.5", name)


UNREADABLE = [
    ("forwarded", (("Forwarded", "for=unknown"),)),
    ("forwarded", (("Forwarded", "for=_hidden"),)),
    ("forwarded", (("Forwarded", "for=9.9.9.9, for=unknown"),)),
    ("forwarded", (("Forwarded", "for=9.9.9.9"), ("Forwarded", "for=_proxy1, for=127.0.0.1"))),
    ("forwarded", (("Forwarded", "for=garbage"),)),
    ("x-forwarded-for", (("X-Forwarded-For", "unknown"),)),
    ("x-forwarded-for", (("X-Forwarded-For", "9.9.9.9, garbage"),)),
    ("x-forwarded-for", (("X-Forwarded-For", "9.9.9.9, unknown, 127.0.0.1"),)),
    ("x-real-ip", (("X-Real-IP", "unknown"),)),
    ("cf-connecting-ip", (("CF-Connecting-IP", "garbage"),)),
]


@pytest.mark.parametrize("header,headers", UNREADABLE,
                         ids=[f"{h}:{'|'.join(v for _, v in hs)}" for h, hs in UNREADABLE])
def test_unreadable_chain_refused(bare_servers, header, headers, client_net):
    """The trusted proxy's nearest unread hop is `unknown`, obfuscated or garbage, so the client
    cannot be known: /claim answers 400 with a message and stores nothing. The request is never
    attributed to the proxy (127.0.0.1) nor to an address left of the unreadable hop."""
    server = bare_servers[header]
    name = new_name("unread")
    r = server.get("/claim?name=" + name, [("Accept", "text/plain")] + list(headers), source=PROXY_ADDRESS)
    assert r.status == 400, f"claim with {headers} answered {r}, expected 400"
    assert r.text.strip(), "the 400 carries no message"
    assert PROXY_ADDRESS not in r.text and "9.9.9.9" not in r.text, f"400 message: {r.text!r}"
    ip = server.get("/api/ip", list(headers), source=PROXY_ADDRESS)
    if ip.status == 200:
        assert ip.json()["ip"] not in SPOOFED, f"/api/ip attributes the request to {ip.json()['ip']}"
    assert_nothing_stored(server, name, client_net(7))


def test_obfuscating_proxy_claim_refused(make_stack, client_net):
    """A real HAProxy that hides its clients (`Forwarded: for=_hidden`, appended after whatever the
    client sent) with --real-ip-header forwarded: the client is unknowable, so the claim is
    refused with 400 and nothing is stored, even when the client offers `for=9.9.9.9` itself."""
    setup = Setup("haproxy-obfuscating", "haproxy", "forwarded",
                  haproxy_frontend=["http-request add-header Forwarded for=_hidden"])
    stack = make_stack(setup)
    for headers in ((), (("Forwarded", "for=9.9.9.9"),)):
        source = client_net(7)
        name = new_name("hidden")
        r = stack.claim(name, source, headers, accept="text/plain")
        assert r.status == 400, f"claim through an obfuscating proxy with {headers} answered {r}, expected 400"
        assert r.text.strip() and PROXY_ADDRESS not in r.text and "9.9.9.9" not in r.text, f"400 message: {r.text!r}"
        assert_nothing_stored(stack.server, name, client_net(9))


# ------------------------------------------------------------------------------------------------
# Configuration file and limits.

@pytest.mark.parametrize("setup_id", SETUP_IDS)
def test_yaml_configuration(make_stack, setup_id, client_net):
    """The same set-up configured through `--config` (trusted_proxies, real_ip_header,
    proxy_protocol) instead of flags: a client sending every forwarding header is scored to its
    true source."""
    stack = make_stack(setup_by_id(setup_id), via_yaml=True)
    source = client_net(7)
    name = new_name("yaml")
    everything = ATTACKS[-1].headers
    assert seen_ip(stack, source, everything) == (source, source)
    assert_scored_to(stack, stack.claim(name, source, everything), source, name)


BURST, STRIKES = 20, 5
LIMITS = f"limits: {{requests_burst: {BURST}, requests_per_second: 1, strikes_before_ban: {STRIKES}, ban_seconds: 300}}\n"


@pytest.mark.parametrize("setup_id", SETUP_IDS)
def test_flood_bans_client_not_proxy(make_stack, setup_id, client_net):
    """Limits key on the real client's /24 behind the proxy. One client floods claims (burst 20,
    1/s, ban after 5 strikes): it gets its burst, then 429 with Retry-After, then is banned (the
    server's ban counter says so) and stays refused, also from another host of its /24.
    Meanwhile a client of another /24 through the same proxy is served 200 throughout: the
    proxy's 127.0.0.1 is never limited nor banned."""
    stack = make_stack(setup_by_id(setup_id), config_extra=LIMITS)
    flooder, neighbour = client_net(7), client_net(8)
    other = client_net(9, 1)  # another /24
    statuses: list[int] = []
    first_429: Response | None = None
    for _ in range(BURST * 4):
        r = stack.claim("flooder", flooder)
        statuses.append(r.status)
        if r.status == 429 and first_429 is None:
            first_429 = r
        if sum(1 for s in statuses if s != 200) >= STRIKES + 3:
            break
    assert statuses[:BURST] == [200] * BURST, f"the flooder's burst was cut short: {statuses}"
    assert first_429 is not None, f"no 429 in {len(statuses)} requests: {statuses}"
    assert "retry-after" in first_429.headers, f"429 without Retry-After: {first_429.headers}"
    assert set(statuses[BURST:]) <= {200, 429, 403}, f"unexpected answers to the flood: {statuses}"
    assert statuses.count(200) <= BURST + 3, f"the flood was not limited: {statuses}"

    r = stack.claim("bystander", other)
    assert r.status == 200 and r.json()["ip"] == other, \
        f"a client of another /24 through the same proxy answered {r} after the flood (flood answers {statuses})"

    # The ban itself, seen where the server reports it (not guessed from a refill time): then the
    # flooder's /24 is refused whatever its bucket holds.
    def banned() -> bool:
        r = stack.server.get("/metrics")
        return r.status == 200 and any(line.startswith("ipquest_bans_total ") and float(line.split()[-1]) >= 1
                                       for line in r.body.decode().splitlines())
    wait_until(banned, "the flooder's /24 banned (ipquest_bans_total)", 10.0, 0.05, stack.server.process)
    for source in (flooder, neighbour):
        r = stack.claim("flooder", source)
        assert r.status in (429, 403), f"banned /24: {source} answered {r} (flood answers {statuses})"
    r = stack.claim("bystander", other)
    assert r.status == 200 and r.json()["ip"] == other, f"bystander answered {r} during the flooder's ban"
    r = stack.via_proxy("/healthz", source=other)
    assert r.status == 200, f"/healthz through the proxy answered {r}"
    stack.server.wait_claim(other, "bystander")
