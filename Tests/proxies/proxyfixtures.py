"""Fixtures for the reverse-proxy tests: real nginx and HAProxy in front of `ipquest serve`.

Imported by test_proxies.py rather than kept in a conftest.py, so that pytest can collect
Tests/web (whose tests import its own `conftest`) and Tests/proxies in one run.

Environment:
  IPQUEST_BIN      the binary to test (default: .build/debug/ipquest of this checkout)
  PROXY_TEST_KEEP  1 keeps each stack's temporary directory (configs, logs, database)
"""
from __future__ import annotations

import itertools
import os

import pytest

from proxyharness import SETUP_IDS, SETUPS, Setup, Stack, find_tool
from pysupport import alarm, ipquest_binary  # proxyharness put Tests/ on sys.path

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEST_SECONDS = 60

@pytest.fixture(autouse=True)
def time_limit():
    """Every test is bounded: SIGALRM fails it after TEST_SECONDS and fixtures still clean up."""
    with alarm(TEST_SECONDS, "proxy test"):
        yield


@pytest.fixture(scope="session")
def binary() -> str:
    return ipquest_binary(REPO)


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """The Debian nginx and haproxy binaries. Missing ones fail the suite (never a silent skip)."""
    found = {name: find_tool(name) for name in ("nginx", "haproxy")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: `make test` installs them (scripts/install-deps.sh test), "
                    f"or `apt-get install nginx haproxy`", pytrace=False)
    return found


_addresses = itertools.count()


@pytest.fixture
def client_net():
    """Fresh client /24s for each test: client_net(7) -> '127.N.M.7' in the test's first /24,
    client_net(9, 1) -> a host of its second /24. Never 127.0.0.0/24 (the proxy's own network),
    nor 127.250/16 and 127.251/16 (readers and health checks)."""
    n = next(_addresses)

    def address(host: int = 7, net: int = 0) -> str:
        assert net in (0, 1)
        k = 2 * n + net
        return f"127.{20 + k // 200}.{k % 200 + 1}.{host}"
    return address


@pytest.fixture(scope="module", params=SETUPS, ids=SETUP_IDS)
def stack(request, binary, tools):
    """One running proxy + server per set-up, shared by the tests of a module (each test uses its
    own client /24 and player names). Start-up is bounded by its own deadlines."""
    s = Stack(request.param, binary, tools).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def make_stack(binary, tools):
    """Starts a stack with its own configuration for one test; stops it afterwards."""
    started: list[Stack] = []

    def make(setup: Setup, via_yaml: bool = False, config_extra: str = "") -> Stack:
        s = Stack(setup, binary, tools, via_yaml=via_yaml, config_extra=config_extra)
        started.append(s)
        return s.start()
    try:
        yield make
    finally:
        for s in started:
            s.stop()

