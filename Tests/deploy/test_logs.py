"""`log.format: text|json` and `--log-format`: one JSON object per line with the text line's
fields; request id and client address in every line a request logs."""
import json
import os
import socket
import subprocess

from harness import Server, binary, free_port, wait_until, _die_with_parent

FIXED = {"timestamp", "level", "label", "source", "message"}


def banned_request(server: Server, request_id: str, client: str) -> None:
    status, headers, _ = server.get("/api/leaderboard", {"User-Agent": "BadBot/1.0", "X-Request-ID": request_id,
                                                          "X-Forwarded-For": client})
    assert status == 403
    assert headers["x-request-id"] == request_id


def json_lines(text: str) -> list[dict]:
    records = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    for r in records:
        assert isinstance(r, dict) and FIXED <= r.keys(), r
    return records


def test_json_flag_writes_one_object_per_line_with_request_id_and_client(workdir):
    config = os.path.join(workdir, "serve.yaml")
    with open(config, "w") as f:
        f.write("bans: { user_agents: [\"BadBot/1.0\"] }\n")
    server = Server(workdir, config=config, args=["--log-format", "json"]).start()
    try:
        banned_request(server, "req-json-1", "198.51.100.7")
        line = wait_until(lambda: next((r for r in json_lines(server.stderr()) if r["message"] == "request banned"), None),
                          10, "the request's log line")
    finally:
        assert server.stop() == 0
    assert line["request_id"] == "req-json-1"
    assert line["client"] == "198.51.100.7"
    assert line["level"] == "info" and line["label"] == "ipquest"
    assert line["timestamp"].endswith("Z")
    # Start-up lines come out as JSON as well, with their metadata at the top level.
    records = json_lines(server.stderr())
    assert any(r["message"] == "loaded claims" and "addresses" in r for r in records), records


def test_config_key_selects_json_and_text_carries_the_same_fields(workdir):
    config = os.path.join(workdir, "serve.yaml")
    with open(config, "w") as f:
        f.write("log: { format: json }\nbans: { user_agents: [\"BadBot/1.0\"] }\n")
    server = Server(workdir, config=config).start()
    try:
        banned_request(server, "req-json-2", "198.51.100.8")
        wait_until(lambda: any(r["message"] == "request banned" and r["request_id"] == "req-json-2"
                               for r in json_lines(server.stderr())), 10, "the JSON line")
    finally:
        server.stop()

    # The flag wins over the file: text, one line with the same fields.
    server = Server(workdir, config=config, args=["--log-format", "text"]).start()
    try:
        banned_request(server, "req-text-3", "198.51.100.9")
        line = wait_until(lambda: next((l for l in server.stderr().splitlines() if "request banned" in l), None),
                          10, "the text line")
    finally:
        server.stop()
    assert "request_id=req-text-3" in line and "client=198.51.100.9" in line, line
    assert not line.startswith("{")


def test_bad_format_is_one_line_naming_the_key_and_exit_2(workdir):
    config = os.path.join(workdir, "serve.yaml")
    with open(config, "w") as f:
        f.write("log: { format: xml }\n")
    result = subprocess.run([binary(), "serve", "--port", "0", "--database", os.path.join(workdir, "g.sqlite"),
                             "--config", config], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "log.format" in result.stderr and "xml" in result.stderr, result.stderr


def test_tunnel_json_log_line_per_tunnel(workdir):
    port = free_port()
    err = os.path.join(workdir, "tunnel.err")
    process = subprocess.Popen([binary(), "tunnel", "--bind", f"127.0.0.1:{port}", "--log-format", "json", "http"],
                               stdout=subprocess.DEVNULL, stderr=open(err, "w"), preexec_fn=_die_with_parent)
    try:
        def connected():
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                return None
        sock = wait_until(connected, 30, "the tunnel to listen")
        with sock:
            # A loopback target is refused by default: one answer, one log line.
            sock.sendall(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 403") or answer.startswith(b"HTTP/1.1 4"), answer
        line = wait_until(lambda: next((r for r in json_lines(open(err).read()) if "tunnel_id" in r), None),
                          10, "the tunnel's JSON line")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert line["label"] == "ipquest.tunnel"
    assert line["target"] == "127.0.0.1:9", line
