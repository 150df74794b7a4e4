"""docs/openapi.yaml: a valid OpenAPI 3.1 document that names every route the router registers,
and whose schemas (which allow no undocumented field) match real answers of a seeded server."""
import glob
import json
import os
import re

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from harness import REPO, Server, write_intelligence

SPEC_PATH = os.path.join(REPO, "docs", "openapi.yaml")


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def test_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation


def registered_routes() -> set[str]:
    """JSON and text routes of the game (GameRoutes' `get(router, "…")`), as OpenAPI paths."""
    with open(os.path.join(REPO, "Sources", "Game", "HTTP", "GameRoutes.swift")) as f:
        source = f.read()
    routes = set()
    for path in re.findall(r'get\(router, "([^"]+)"\)', source):
        path = "/" + path
        path = path.replace("/**", "/{name}")
        routes.add(path)
    return routes


def openapi_template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_registered_route_is_described(spec):
    routes = registered_routes()
    assert "/claim" in routes and "/api/leaderboard" in routes, routes
    described = {openapi_template(p) for p in spec["paths"]}
    missing = sorted(r for r in routes if openapi_template(r) not in described)
    assert not missing, f"routes without a description in docs/openapi.yaml: {missing}"
    # Web pages (Sources/Game/Web) answer HTML, not JSON: none of them under /api/.
    for page in glob.glob(os.path.join(REPO, "Sources", "Game", "Web", "*.swift")):
        with open(page) as f:
            assert not re.search(r'router\.get\("/api/', f.read()), page


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


def find_operation(spec, path: str):
    bare = path.split("?", 1)[0]
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^?]+", re.escape(template)) + "$"
        if re.match(pattern, bare):
            candidates = [(template, item)]
            # The most specific template wins (/score/{period} vs /score).
            return sorted(candidates, key=lambda c: -len(c[0]))[0][1]["get"]
    raise AssertionError(f"{bare} is not in the document")


def check_answer(spec, server: Server, path: str, status: int, headers: dict | None = None):
    got, response_headers, body = server.get(path, headers)
    assert got == status, (path, got, body[:300])
    operation = find_operation(spec, path)
    described = operation["responses"].get(str(status))
    assert described, f"{path}: status {status} is not described"
    described = resolve(described, spec)
    content_type = response_headers.get("content-type", "").split(";")[0].strip()
    assert content_type in described.get("content", {}), f"{path} {status}: {content_type} not described"
    schema = described["content"][content_type]["schema"]
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


SUCCESS = ["/recent", "/score", "/score/hour", "/score/day", "/score/week", "/score/month", "/api/recent",
           "/api/leaderboard", "/api/leaderboard?period=day", "/api/leaderboard?residential=1",
           "/api/leaderboard?limit=1", "/api/leaderboard?limit=1&cursor=1", "/api/blocks",
           "/api/blocks?period=week", "/api/countries", "/api/countries/DE", "/api/countries/de", "/api/as",
           "/api/as/3320", "/api/as/AS3320", "/api/players/alice", "/api/players/bob?period=hour",
           "/api/players/c%2Fd", "/api/ip", "/healthz", "/ip", "/metrics"]
ERRORS = [("/score/year", 404), ("/api/leaderboard?period=year", 400), ("/api/leaderboard?limit=0", 400), ("/api/blocks?period=x", 400),
          ("/api/countries/XYZ", 400), ("/api/countries/FR", 404), ("/api/as/x", 400), ("/api/as/64496", 404),
          ("/api/players/nobody", 404), ("/api/players/bad%20name", 400),
          ("/claim", 400), ("/claim?name=bad%20name", 400),
          ("/api/ip", 400), ("/ip", 400)]  # unattributed: the trusted proxy named no client


@pytest.mark.parametrize("path", SUCCESS)
def test_answers_match_the_schemas(spec, seeded, path):
    # The server trusts 127.0.0.1 as a proxy: the client is named in X-Forwarded-For.
    answer = check_answer(spec, seeded, path, 200, {"X-Forwarded-For": "11.0.130.9"})
    if path == "/api/leaderboard?limit=1":
        assert len(answer["players"]) == 1 and answer["next_cursor"] == "1"
    if path == "/api/ip":
        assert answer == {"ip": "11.0.130.9", "version": 4, "datacenter": "aws"}
    if path == "/api/countries/DE":
        assert answer["country"] == "DE" and answer["addresses"] == 5
    if path == "/api/players/alice":
        assert answer["countries"] == [{"country": "DE", "addresses": 4}]


@pytest.mark.parametrize("path,status", ERRORS)
def test_errors_match_the_schemas(spec, seeded, path, status):
    check_answer(spec, seeded, path, status)


def test_claim_answers_match(spec, seeded):
    answer = check_answer(spec, seeded, "/claim?name=erin", 200, {"Accept": "application/json", "X-Forwarded-For": "11.0.130.1"})
    assert answer["country"] == "DE" and answer["asn"] == 3320 and answer["datacenter"] == "aws"
    answer = check_answer(spec, seeded, "/claim/f%2Fg", 200, {"Accept": "application/json", "X-Forwarded-For": "11.0.131.1"})
    assert answer["name"] == "f/g"
    check_answer(spec, seeded, "/claim/frank", 200, {"Accept": "text/plain", "X-Forwarded-For": "11.0.132.1"})
    check_answer(spec, seeded, "/claim?name=gina", 200, {"Accept": "text/html", "X-Forwarded-For": "11.0.133.1"})


def test_not_modified_is_described(spec, seeded):
    _, headers, _ = seeded.get("/score")
    status, _, body = seeded.get("/score", {"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    assert "304" in find_operation(spec, "/score")["responses"]
