"""Fixtures: one seeded `ipquest serve` per session, headless Chromium through Selenium.

Environment:
  IPQUEST_BIN      the binary to test (default: .build/debug/ipquest of this checkout)
  WEB_TEST_OUTPUT  where screenshots and figures go (default: .build/web-tests, not committed)
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pysupport import alarm, ipquest_binary  # noqa: E402
from seed import Model, Server  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Seed data. Timestamps relative to the session start.
NOW = int(time.time())
ESCAPING_NAMES = ["javascript:alert", "../../etc/passwd", "a/b", "x+y", "..", ".", "*", "^_^", "@:/.!-_*+^"]
# Written straight into SQLite (storage trusts its rows): what escaping must survive even if
# validation were ever bypassed. Never accepted by /claim nor by `claims import`.
HOSTILE_NAME = "<img src=x onerror=alert(1)>&amp;\"'"


def import_rows() -> list[tuple[str, str, int]]:
    rows = []
    # Period structure: oldtimer counts in month/all, weekly from week up, daily from day up.
    rows += [(f"60.0.{i // 200}.{i % 200 + 1}", "oldtimer", NOW - 10 * 86400) for i in range(40)]
    rows += [(f"61.1.0.{i + 1}", "weekly", NOW - 3 * 86400) for i in range(20)]
    rows += [(f"62.2.0.{i + 1}", "daily", NOW - 2 * 3600) for i in range(12)]
    # Names that are valid but hostile to naive URL or HTML handling.
    for i, name in enumerate(ESCAPING_NAMES):
        rows += [(f"50.{i}.0.{j + 1}", name, NOW - 600) for j in range(i + 1)]
    return rows


@pytest.fixture(autouse=True)
def time_limit():
    """Every test is bounded: SIGALRM fails it after 180 s and fixtures still clean up."""
    with alarm(180, "web test"):
        yield


@pytest.fixture(scope="session")
def binary() -> str:
    return ipquest_binary(REPO)


@pytest.fixture(scope="session")
def outdir() -> str:
    path = os.environ.get("WEB_TEST_OUTPUT", os.path.join(REPO, ".build", "web-tests"))
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def server(binary):
    directory = tempfile.mkdtemp(prefix="ipquest-web-")
    model = Model()
    srv = Server(binary, directory, model)
    try:
        result = srv.import_claims(import_rows())
        assert result.returncode == 0, result.stderr
        # The hostile row, straight into storage.
        import sqlite3
        db = sqlite3.connect(srv.database)
        db.execute("INSERT INTO claims (ip, name, claimed_at) VALUES (?, ?, ?)", (0x33000001, HOSTILE_NAME, NOW - 300))
        db.commit()
        db.close()
        model.claim("51.0.0.1", HOSTILE_NAME, NOW - 300)

        srv.start(config=srv.write_intelligence())
        # Block 127: real sources 127.x.y.z, one socket bound per address.
        for i in range(30):
            srv.claim_from(f"127.1.{i // 10}.{i % 10 + 1}", "alice")
        for i in range(18):
            srv.claim_from(f"127.2.0.{i + 1}", "bob")
        for i in range(6):
            srv.claim_from(f"127.3.{i}.9", "carol")
        # A /24 that is tied inside block 127 (for the Hilbert map).
        for i in range(2):
            srv.claim_from(f"127.4.4.{i + 1}", "dave")
            srv.claim_from(f"127.4.4.{i + 11}", "erin")
        # Other blocks through the trusted proxy (seed.PROXY).
        for i in range(5):
            srv.claim_via_proxy(f"11.0.{i}.1", "carol")
        for i in range(3):
            srv.claim_via_proxy(f"11.9.0.{i + 1}", "dave")
        for i in range(2):  # block 12: tied between erin and frank
            srv.claim_via_proxy(f"12.0.0.{i + 1}", "erin")
            srv.claim_via_proxy(f"12.0.1.{i + 1}", "frank")
        for i in range(4):
            srv.claim_via_proxy(f"13.{i}.0.1", "alice")
        srv.claim_via_proxy("13.200.0.1", "bob")
        for i in range(3):  # block 10 (reserved, private) is playable too
            srv.claim_via_proxy(f"10.0.0.{i + 1}", "bob")
        # Over-claim part of the imported oldtimer block: now-fresh claims by bob.
        for i in range(3):
            srv.claim_via_proxy(f"60.0.0.{i + 1}", "bob")
        srv.wait_snapshot()
        yield srv
    finally:
        srv.stop()
        if os.environ.get("WEB_TEST_KEEP") != "1":
            shutil.rmtree(directory, ignore_errors=True)


def make_driver(width: int = 1400, height: int = 1800, javascript: bool = True):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--lang=en-US"):
        options.add_argument(arg)
    if os.path.exists("/usr/bin/chromium"):
        options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="session")
def browser():
    driver = make_driver()
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver, allow: tuple[str, ...] = ()) -> list[dict]:
    entries = driver.get_log("browser")
    return [e for e in entries if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allow)]


@pytest.fixture
def page(browser):
    """The shared browser; after the test, no console errors may have been logged."""
    browser.get_log("browser")  # drop what earlier tests left
    yield browser
    errors = console_errors(browser, allow=getattr(browser, "_allowed_errors", ()))
    browser._allowed_errors = ()
    assert not errors, f"console errors: {errors}"
