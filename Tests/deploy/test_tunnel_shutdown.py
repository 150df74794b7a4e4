"""`ipquest tunnel` under systemd's stop: SIGTERM (or SIGINT) stops accepting, lets open tunnels
end within --drain-seconds, then exits 0. Loopback only; every wait is bounded."""
import os
import signal
import socket
import subprocess
import threading

from harness import binary, free_port, wait_until, _die_with_parent


class Echo:
    """A loopback echo server on a thread of its own."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(conn,), daemon=True).start()

    @staticmethod
    def echo(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self):
        self.listener.close()


def start_tunnel(workdir: str, drain_seconds: int):
    config = os.path.join(workdir, "tunnel.yaml")
    with open(config, "w") as f:
        f.write("target_connection:\n  denied_networks: []\n")
    port = free_port()
    err = os.path.join(workdir, f"tunnel-{port}.err")
    process = subprocess.Popen([binary(), "tunnel", "--config", config, "--bind", f"127.0.0.1:{port}",
                                "--drain-seconds", str(drain_seconds), "http"],
                               stdout=subprocess.DEVNULL, stderr=open(err, "w"), preexec_fn=_die_with_parent)
    return process, port, err


def connect(port: int):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None


def open_tunnel(port: int, target: int) -> socket.socket:
    sock = wait_until(lambda: connect(port), 30, "the tunnel to listen")
    sock.sendall(f"CONNECT 127.0.0.1:{target} HTTP/1.1\r\nHost: 127.0.0.1:{target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def relays(sock: socket.socket, text: bytes) -> bool:
    sock.sendall(text)
    got = b""
    while len(got) < len(text):
        chunk = sock.recv(4096)
        if not chunk:
            return False
        got += chunk
    return got == text


def refused(port: int) -> bool:
    sock = connect(port)
    if sock is None:
        return True
    sock.close()
    return False


def test_sigterm_lets_open_tunnels_end_then_exits(workdir):
    echo = Echo()
    process, port, err = start_tunnel(workdir, drain_seconds=30)
    try:
        sock = open_tunnel(port, echo.port)
        assert relays(sock, b"before")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refused(port), 10, "the listener to close")
        assert process.poll() is None, "exited with a tunnel open"
        assert relays(sock, b"during the drain")
        sock.close()
        assert process.wait(timeout=10) == 0
        log = open(err).read()
        assert "every tunnel ended" in log, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        echo.close()


def test_sigint_cuts_tunnels_still_open_at_the_deadline(workdir):
    echo = Echo()
    process, port, err = start_tunnel(workdir, drain_seconds=1)
    try:
        sock = open_tunnel(port, echo.port)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        log = open(err).read()
        assert "still open after the drain time" in log, log
        sock.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        echo.close()
