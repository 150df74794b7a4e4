"""docs/openapi.yaml: a valid OpenAPI 3.1 document that names every route the router registers
(with every method a claim accepts), and whose schemas (which allow no undocumented field) match
real answers of a seeded server."""
import http.client
import json
import os
import re
import struct
import time
import zlib

import jsonschema
import pytest
from pysupport import hilbert_point
import yaml
from openapi_spec_validator import validate

from harness import REPO, Server, wait_until, write_intelligence

SPEC_PATH = os.path.join(REPO, "docs", "openapi.yaml")
GAME_ROUTES = os.path.join(REPO, "Sources", "Game", "HTTP", "RouteTable.swift")


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def test_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation


def game_routes_source() -> str:
    with open(GAME_ROUTES) as f:
        return f.read()


def table_routes() -> list[tuple[str, str]]:
    """RouteTable.routes as (path, methods): `Route("/path")` is a read, `.page` a web page, `.claim` a claim."""
    rows = re.findall(r'Route\("([^"]+)"(?:, \.(read|page|claim))?', game_routes_source())
    assert rows, "RouteTable.routes not found"
    return [(path, methods or "read") for path, methods in rows]


def registered_routes() -> set[str]:
    """JSON and text routes of the game (every route of RouteTable but the web pages), as OpenAPI paths."""
    return {path.replace("/**", "/{name}") for path, methods in table_routes() if methods != "page"}


def claim_methods() -> list[str]:
    """RouteTable.claimMethods, lower case (`get`, `post`, …)."""
    m = re.search(r"static let claimMethods: \[HTTPRequest\.Method\] = \[([^\]]*)\]", game_routes_source())
    assert m, "RouteTable.claimMethods not found"
    return [name.strip().lstrip(".") for name in m.group(1).split(",") if name.strip()]


def openapi_template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_registered_route_is_described(spec):
    routes = registered_routes()
    assert {"/claim", "/claim/{name}", "/api/leaderboard", "/api/ranks/{period}", "/api/users", "/statusz"} <= routes, routes
    described = {openapi_template(p) for p in spec["paths"]}
    missing = sorted(r for r in routes if openapi_template(r) not in described)
    assert not missing, f"routes without a description in docs/openapi.yaml: {missing}"
    # Web pages answer HTML, not JSON: none of them under /api/.
    pages = [path for path, methods in table_routes() if methods == "page"]
    assert "/" in pages and not [p for p in pages if p.startswith("/api/")], pages


def test_every_claim_method_is_described(spec):
    methods = claim_methods()
    assert {"get", "post", "options"} <= set(methods), methods
    for path in ("/claim", "/claim/{name}"):
        missing = [m for m in methods if m not in spec["paths"][path]]
        assert not missing, f"{path}: methods that claim but are not described: {missing}"


def resolve(node, spec):
    """The schema with every local $ref replaced by its target (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node and len(node) == 1:
            target = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target, spec)
        return {k: resolve(v, spec) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, spec) for v in node]
    return node


def find_operation(spec, path: str, method: str = "GET"):
    bare = path.split("?", 1)[0]
    matches = []
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^?]+", re.escape(template)) + "$"
        if re.match(pattern, bare):
            matches.append((template, item))
    assert matches, f"{bare} is not in the document"
    # The most specific template wins (/score/{period} vs /score).
    template, item = sorted(matches, key=lambda c: -len(c[0]))[0]
    assert method.lower() in item, f"{method} {template} is not in the document"
    return item[method.lower()]


def request(server: Server, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Any method (Server.get sends GET only)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def check_answer(spec, server: Server, path: str, status: int, headers: dict | None = None, method: str = "GET"):
    got, response_headers, body = request(server, method, path, headers)
    assert got == status, (method, path, got, body[:300])
    operation = find_operation(spec, path, method)
    described = operation["responses"].get(str(status))
    assert described, f"{method} {path}: status {status} is not described"
    described = resolve(described, spec)
    if "content" not in described:  # 204, 304: no body
        assert body == b"", (method, path, status, body[:300])
        return None
    content_type = response_headers.get("content-type", "").split(";")[0].strip()
    assert content_type in described["content"], f"{method} {path} {status}: {content_type} not described"
    for name, header in described.get("headers", {}).items():
        if name.lower() in response_headers:
            jsonschema.Draft202012Validator(header["schema"]).validate(response_headers[name.lower()])
        else:
            assert not header.get("required"), f"{method} {path} {status}: required header {name} not sent"
    schema = described["content"][content_type]["schema"]
    if content_type.startswith("image/"):
        return body
    instance = json.loads(body) if content_type == "application/json" else body.decode()
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(instance)
    return instance


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("openapi"))
    server = Server(directory, config=write_intelligence(directory)).start()
    try:
        # 11.0.0.0/16 is DE/AS3320, 11.0.128.0/17 also in AWS's ranges; 12.x knows nothing.
        for i in range(4):
            assert server.claim(f"11.0.{i}.1", "alice")[0] == 200
        assert server.claim("11.0.200.1", "bob")[0] == 200
        assert server.claim("12.0.0.1", "bob")[0] == 200
        assert server.claim("12.0.0.2", "c/d")[0] == 200
        assert server.claim("12.0.0.1", "alice")[0] == 200  # a take-over
        server.wait_recent("alice")
        yield server
    finally:
        server.stop()


# The seed: block 11 alice 4, bob 1 (alice holds it); block 12 alice 1, c/d 1 (tied).
SUCCESS = ["/recent", "/score", "/score/hour", "/score/day", "/score/week", "/score/month", "/score/year", "/api/recent",
           "/api/leaderboard", "/api/leaderboard?period=day", "/api/leaderboard?period=year", "/api/leaderboard?residential=1",
           "/api/leaderboard?limit=1", "/api/leaderboard?limit=1&cursor=1", "/api/blocks",
           "/api/blocks?period=week", "/api/blocks?period=year", "/api/ranks", "/api/ranks/all", "/api/ranks/year",
           "/api/ranks/hour", "/api/users?name=alice", "/api/users?name=nobody", "/api/users?name=c%2Fd",
           "/api/countries", "/api/countries/DE", "/api/countries/de", "/api/as",
           "/api/as/3320", "/api/as/AS3320", "/api/players/alice", "/api/players/alice?period=year",
           "/api/players/bob?period=hour", "/api/players/c%2Fd", "/api/ip", "/healthz", "/ip", "/statusz", "/metrics"]
IPV6 = {"X-Forwarded-For": "2001:db8::1"}
ERRORS = [("/score/decade", 404), ("/score/all", 404), ("/api/leaderboard?period=decade", 400),
          ("/api/leaderboard?limit=0", 400), ("/api/blocks?period=x", 400), ("/api/players/alice?period=decade", 400),
          ("/api/ranks/decade", 404), ("/api/users", 400), ("/api/users?name=bad%20name", 400),
          ("/api/countries/XYZ", 400), ("/api/countries/FR", 404), ("/api/as/x", 400), ("/api/as/64496", 404),
          ("/api/players/nobody", 404), ("/api/players/bad%20name", 400),
          ("/claim", 400), ("/claim?name=bad%20name", 400),
          ("/api/ip", 400), ("/ip", 400),  # unattributed: the trusted proxy named no client
          ("/ip", 400, IPV6), ("/claim?name=six", 400, IPV6),
          ("/plot/256", 404), ("/plot/x", 404), ("/player-map.png?name=nobody", 404), ("/player-map.png", 404)]


@pytest.mark.parametrize("path", SUCCESS)
def test_answers_match_the_schemas(spec, seeded, path):
    # The server trusts 127.0.0.1 as a proxy: the client is named in X-Forwarded-For.
    answer = check_answer(spec, seeded, path, 200, {"X-Forwarded-For": "11.0.130.9"})
    if path == "/api/leaderboard?limit=1":
        assert len(answer["players"]) == 1 and answer["next_cursor"] == "1"
    if path == "/api/ip":
        assert answer == {"ip": "11.0.130.9", "version": 4, "v4": True, "datacenter": "aws"}
    if path == "/api/countries/DE":
        assert answer["country"] == "DE" and answer["addresses"] == 5
    if path == "/api/players/alice":
        assert answer["countries"] == [{"country": "DE", "addresses": 4}]
    if path.startswith("/api/blocks"):
        assert [(b["block"], b["nick"], b["claims"], b["is_tied"]) for b in answer["blocks"]] == [(11, "alice", 4, False), (12, "tied", 1, True)]
    if path.startswith("/api/ranks"):
        assert answer["period"] == (path.removeprefix("/api/ranks").removeprefix("/") or "week")
        # total_claims counts the addresses in the blocks held (4 in block 11), not all 5.
        assert answer["rankings"] == [{"nick": "alice", "name": "alice", "rank": 1, "blocks": [11], "total_claims": 4, "addresses": 5}]
    if path == "/api/users?name=alice":
        assert answer["rankings"] == [
            {"block": 11, "rank": 1, "max_rank": 2, "is_tied": False, "claims": 4, "nick": "alice", "players": 2},
            {"block": 12, "rank": 1, "max_rank": 1, "is_tied": True, "claims": 1, "nick": "alice", "players": 2}]
    if path == "/api/users?name=nobody":
        assert answer["name"] == "nobody" and answer["rankings"] == []
    if path == "/api/recent":
        assert all(c["nick"] == c["name"] for c in answer["claims"])
    if path == "/statusz":
        fields = dict(line.split(": ", 1) for line in answer.splitlines())
        assert list(fields) == ["uptime", "started_from", "addresses", "players", "storage_position", "claims_queued",
                                "board_version", "maxrss_kib", "utime", "stime", "yourip", "yourtokens"], fields
        assert fields["yourip"] == "11.0.130.9" and int(fields["yourtokens"]) >= 0 and fields["started_from"] in ("checkpoint", "storage")


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: f"{e[0]}-{e[1]}{'-ipv6' if len(e) > 2 else ''}")
def test_errors_match_the_schemas(spec, seeded, error):
    path, status, *headers = error
    check_answer(spec, seeded, path, status, headers[0] if headers else None)


def test_ipv6_client(spec, seeded):
    answer = check_answer(spec, seeded, "/api/ip", 200, IPV6)
    assert answer == {"ip": "2001:db8::1", "version": 6, "v4": False, "datacenter": None}
    assert "IPv4 only" in check_answer(spec, seeded, "/ip", 400, IPV6)


def test_claim_answers_match(spec, seeded):
    answer = check_answer(spec, seeded, "/claim?name=erin", 200, {"Accept": "application/json", "X-Forwarded-For": "11.0.130.1"})
    assert answer["country"] == "DE" and answer["asn"] == 3320 and answer["datacenter"] == "aws"
    assert answer["message"] == "The land at 11.0.130.1 was claimed for erin."
    answer = check_answer(spec, seeded, "/claim/f%2Fg", 200, {"Accept": "application/json", "X-Forwarded-For": "11.0.131.1"})
    assert answer["name"] == "f/g"
    text = check_answer(spec, seeded, "/claim/frank", 200, {"Accept": "text/plain", "X-Forwarded-For": "11.0.132.1"})
    assert text == "The land at 11.0.132.1 was claimed for frank.\n"
    check_answer(spec, seeded, "/claim?name=gina", 200, {"Accept": "text/html", "X-Forwarded-For": "11.0.133.1"})
    gif = check_answer(spec, seeded, "/claim?name=gina", 200, {"Accept": "image/*", "X-Forwarded-For": "11.0.133.2"})
    assert gif.startswith(b"GIF8")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_claim_with_other_methods(spec, seeded, method):
    i = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"].index(method)
    name = f"m-{method.lower()}"
    answer = check_answer(spec, seeded, f"/claim?name={name}", 200, {"Accept": "application/json", "X-Forwarded-For": f"14.0.{i}.1"}, method)
    assert (answer["name"], answer["ip"]) == (name, f"14.0.{i}.1")
    answer = check_answer(spec, seeded, f"/claim/{name}", 200, {"Accept": "application/json", "X-Forwarded-For": f"14.0.{i}.2"}, method)
    assert (answer["name"], answer["ip"]) == (name, f"14.0.{i}.2")


def test_claim_without_an_acceptable_form_is_204_and_stored(spec, seeded):
    check_answer(spec, seeded, "/claim?name=quiet", 204, {"Accept": "application/xml", "X-Forwarded-For": "14.1.0.1"})
    check_answer(spec, seeded, "/claim/quiet", 204, {"Accept": "application/xml, font/*", "X-Forwarded-For": "14.1.0.2"}, "POST")

    def stored():
        status, _, body = seeded.get("/api/players/quiet")
        return status == 200 and json.loads(body)["addresses"] == 2
    wait_until(stored, 10, "quiet's two claims")


def test_head_claims_like_get(seeded):
    status, _, body = request(seeded, "HEAD", "/claim?name=heady", {"X-Forwarded-For": "14.2.0.1"})
    assert status == 200 and body == b""


def test_not_modified_is_described(spec, seeded):
    # The claims of the tests before may still be on their way into the scores: a 200 must
    # then carry another ETag (the content moved on), and the next round is asked with it.
    seen = {"etag": seeded.get("/score")[1]["etag"]}

    def not_modified():
        status, headers, body = seeded.get("/score", {"If-None-Match": seen["etag"]})
        if status == 200:
            assert headers["etag"] != seen["etag"], "a 200 for the ETag the client already has"
            seen["etag"] = headers["etag"]
            return False
        assert status == 304 and body == b""
        return True
    wait_until(not_modified, 10, "a 304 for the current ETag of /score")
    assert "304" in find_operation(spec, "/score")["responses"]


@pytest.mark.parametrize("path", ["/recent", "/score", "/score/year", "/api/recent", "/api/leaderboard",
                                  "/api/blocks?period=year", "/api/ranks", "/api/ranks/all"])
def test_last_modified_and_if_modified_since(spec, seeded, path):
    _, headers, _ = seeded.get(path)
    stamp = headers["last-modified"]
    assert "Last-Modified" in resolve(find_operation(spec, path)["responses"]["200"], spec)["headers"]
    check_answer(spec, seeded, path, 304, {"If-Modified-Since": stamp})
    assert seeded.get(path, {"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"})[0] == 200
    # If-None-Match takes precedence: a stale tag gets the body whatever If-Modified-Since says.
    assert seeded.get(path, {"If-Modified-Since": stamp, "If-None-Match": '"stale"'})[0] == 200


def png_pixels(body: bytes) -> tuple[int, int, list[list[int]]]:
    """Width, height and palette indices of an 8-bit palette PNG without row filters (as HilbertMap writes them)."""
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(body):
        length, kind = struct.unpack(">I4s", body[pos:pos + 8])
        data = body[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[:10])
            assert (depth, colour) == (8, 3)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    rows = [raw[r * (width + 1):(r + 1) * (width + 1)] for r in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [list(row[1:]) for row in rows]


def test_pictures(spec, seeded):
    # /plot/12: one pixel per /20; 12.0.0.0/20 holds 2 addresses (bit length 2).
    width, height, pixels = png_pixels(check_answer(spec, seeded, "/plot/12", 200))
    assert (width, height) == (64, 64)
    assert {(x, y): v for y, row in enumerate(pixels) for x, v in enumerate(row) if v} == {hilbert_point(0, 64): 2}
    # /player-map.png: one pixel per /16 of the whole space; alice has 4 in 11.0/16, 1 in 12.0/16.
    width, height, pixels = png_pixels(check_answer(spec, seeded, "/player-map.png?name=alice", 200))
    assert (width, height) == (256, 256)
    assert {(x, y): v for y, row in enumerate(pixels) for x, v in enumerate(row) if v} == \
        {hilbert_point(11 * 256, 256): 3, hilbert_point(12 * 256, 256): 1}


@pytest.mark.parametrize("path", ["/plot/12", "/player-map.png?name=alice"])
def test_pictures_revalidate(spec, seeded, path):
    # /plot/N goes through the whole-response cache (GameRoutes.cachedPaths): a hit must answer 304 too.
    _, headers, _ = seeded.get(path)
    check_answer(spec, seeded, path, 304, {"If-None-Match": headers["etag"]})


def test_statusz_uptime_counts_from_the_start(tmp_path):
    server = Server(str(tmp_path)).start()
    try:
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started >= 2.5, 10, "2.5 s of uptime")
        fields = dict(line.split(": ", 1) for line in server.get("/statusz")[2].decode().splitlines())
        assert int(fields["uptime"]) >= 2, fields
    finally:
        server.stop()
