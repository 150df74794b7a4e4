"""deploy/grafana/*.json: every metric a panel queries exists on a running server's /metrics,
with the labels the query selects or groups by."""
import json
import os
import re
import socket
import subprocess

import pytest

from harness import REPO, Server, binary, free_port, metric_names, wait_until, _die_with_parent

GRAFANA = os.path.join(REPO, "deploy", "grafana")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def panels(dashboard: str) -> list[dict]:
    with open(os.path.join(GRAFANA, dashboard)) as f:
        board = json.load(f)
    assert board["panels"], dashboard
    for p in board["panels"]:
        assert p["targets"], p["title"]
    return board["panels"]


def queried(expr: str) -> list[tuple[str, set[str], set[str]]]:
    """(metric, labels selected, labels grouped by) for each metric in a PromQL expression."""
    grouped = set()
    for m in re.finditer(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        grouped |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    text = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors, $__rate_interval
    found = []
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?", text):
        name, selector, call = m.group(1), m.group(2), m.group(3)
        if call or name in KEYWORDS or re.fullmatch(r"[0-9.e]+", name):
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", selector or ""))
        found.append((name, labels, grouped - {"le", "instance", "job"}))
    return found


def label_names(text: str, metric: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            names |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", line[len(metric):]))
    return names


def check(dashboard: str, scrape: str, only=lambda p: True):
    exposed = metric_names(scrape)
    problems, checked = [], 0
    for p in panels(dashboard):
        if not only(p):
            continue
        for t in p["targets"]:
            metrics = queried(t["expr"])
            assert metrics, (p["title"], t["expr"])
            for name, selected, grouped in metrics:
                checked += 1
                if name not in exposed:
                    problems.append(f"{p['title']}: {name} is not on /metrics")
                    continue
                labels = label_names(scrape, name)
                if selected - labels:
                    problems.append(f"{p['title']}: {name} has no label {selected - labels}")
                if grouped and not grouped & labels and not any(grouped <= label_names(scrape, n) for n, _, _ in metrics):
                    problems.append(f"{p['title']}: no metric of the query has the labels {grouped}")
    assert checked
    assert not problems, "\n".join(problems)


def is_postgres_panel(p: dict) -> bool:
    return any("ipquest_postgres_" in t["expr"] for t in p["targets"])


def test_parser_finds_metrics_and_labels():
    got = queried('histogram_quantile(0.99, sum by (le, http_route) (rate(http_server_request_duration_bucket{http_route="/x"}[$__rate_interval]))) '
                  '/ time() - max by (instance) (ipquest_x)')
    assert got == [("http_server_request_duration_bucket", {"http_route"}, {"http_route"}),
                   ("ipquest_x", set(), {"http_route"})]


def test_game_dashboard_queries_only_metrics_a_running_server_exports(workdir):
    titles = " ".join(p["title"].lower() for p in panels("ipquest.json"))
    for topic in ("claims per second", "batch size", "queue depth", "shed", "429", "503", "bans", "cache hit rate",
                  "latency", "snapshot rebuild", "feed lag"):
        assert topic in titles, topic
    server = Server(workdir).start()
    try:
        for i in range(20):  # play: claims, reads, a cached page, a refusal
            assert server.claim(f"198.51.{i}.1", f"p{i % 3}")[0] == 200
        server.wait_recent("p0")
        for path in ("/score", "/api/leaderboard", "/api/blocks", "/players/p0", "/players/p0", "/api/players/p1", "/nope"):
            server.get(path)
        check("ipquest.json", server.metrics(), only=lambda p: not is_postgres_panel(p))
    finally:
        server.stop()


def test_postgres_panel_queries_metrics_of_a_postgres_instance(workdir):
    url = os.environ.get("IPQUEST_POSTGRES_URL")
    if not url:
        pytest.skip("IPQUEST_POSTGRES_URL not set: run under scripts/with-postgres.sh (make test does)")
    assert any(is_postgres_panel(p) for p in panels("ipquest.json"))
    server = Server(workdir, database=url).start()
    try:
        assert server.claim("198.51.100.1", "pg")[0] == 200
        scrape = wait_until(lambda: (lambda t: t if "ipquest_postgres_feed_polled_timestamp_seconds" in t else None)(server.metrics()),
                            10, "the change feed's first poll")
        check("ipquest.json", scrape, only=is_postgres_panel)
    finally:
        server.stop()


def test_tunnel_dashboard_queries_only_metrics_a_running_tunnel_exports(workdir):
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen([binary(), "tunnel", "--bind", f"127.0.0.1:{port}", "--metrics-bind", f"127.0.0.1:{metrics_port}", "http"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        def scrape():
            try:
                with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                return data.split(b"\r\n\r\n", 1)[1].decode()
            except OSError:
                return None
        wait_until(scrape, 30, "the tunnel's metrics")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # one refused tunnel
            s.sendall(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
            s.recv(4096)
        check("tunnel.json", wait_until(scrape, 10, "the metrics"))
    finally:
        process.terminate()
        process.wait(timeout=10)
