"""Fixtures for the operator-facing tests: a time limit on every test and a scratch directory."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pysupport import alarm  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "seconds(n): the test's time limit (default 240)")


@pytest.fixture(autouse=True)
def time_limit(request):
    """Every test is bounded: SIGALRM fails it after 240 s (or its `seconds` mark), and fixtures still clean up."""
    mark = request.node.get_closest_marker("seconds")
    with alarm(mark.args[0] if mark else 240):
        yield


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="ipquest-deploy-")
    yield path
    shutil.rmtree(path, ignore_errors=True)
