"""Fixtures for the operator-facing tests: a time limit on every test and a scratch directory."""
import shutil
import signal
import tempfile

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "seconds(n): the test's time limit (default 240)")


@pytest.fixture(autouse=True)
def time_limit(request):
    """Every test is bounded: SIGALRM fails it after 240 s (or its `seconds` mark), and fixtures still clean up."""
    mark = request.node.get_closest_marker("seconds")
    limit = mark.args[0] if mark else 240

    def expired(signum, frame):
        raise TimeoutError(f"test took longer than {limit} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="ipquest-deploy-")
    yield path
    shutil.rmtree(path, ignore_errors=True)
