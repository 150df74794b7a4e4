"""Helpers shared by the Python suites (Tests/web, Tests/proxies, Tests/deploy).

Each suite puts this folder on sys.path and imports from here, so a time limit and a wait on
observable state are written once.
"""
from __future__ import annotations

import contextlib
import signal
import time


@contextlib.contextmanager
def alarm(seconds: int, what: str = "test"):
    """Fails the enclosed block with TimeoutError after `seconds` (SIGALRM); cleanup still runs."""
    def expired(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def wait_until(predicate, what: str, timeout: float = 10.0, interval: float = 0.05, process=None,
               tolerate: tuple[type[BaseException], ...] = ()):
    """Polls `predicate` until it returns a true value (returned) or `timeout` passes (TimeoutError
    naming `what`). `process`, if given, is asked `check_alive()` each round, so a crashed server
    fails at once; exceptions of the `tolerate` types count as "not yet"."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if process is not None:
            process.check_alive()
        try:
            value = predicate()
            if value:
                return value
        except tolerate as e:
            last_error = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s (last error: {last_error!r})")
        time.sleep(interval)


def ipquest_binary(repo: str) -> str:
    """The binary under test: $IPQUEST_BIN, else the debug build of the checkout at `repo`."""
    import os

    import pytest
    path = os.environ.get("IPQUEST_BIN", os.path.join(repo, ".build", "debug", "ipquest"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"no ipquest binary at {path}: build it first (swift build) or set IPQUEST_BIN")
    return path


def hilbert_point(d: int, n: int = 256) -> tuple[int, int]:
    """Textbook d2xy for a Hilbert curve of side n."""
    x = y = 0
    t = d
    s = 1
    while s < n:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y
