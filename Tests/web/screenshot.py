"""Regenerates docs/screenshot-home.png: a demo board (imported claims plus live claims from
127.x.y.z sources) served by a real `ipquest serve`, shot by headless Chromium."""
from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from conftest import REPO, make_driver  # noqa: E402
from seed import Model, Server  # noqa: E402

PLAYERS = ["jart", "ClayLoam", "tunnel-rat", "v4hoarder", "cloud^hopper", "proxy+master", "n0body",
           "sixteen_bits", "mesh:net", "anycast.rocks", "nat-punch", "bgp*enjoyer", "lan_party", "ttl64"]


def demo_rows(now: int) -> list[tuple[str, str, int]]:
    rng = random.Random(20221003)
    weights = [rng.uniform(0.3, 3.0) for _ in PLAYERS]
    rows = []
    for block in range(1, 224):
        if block in (10, 127) or rng.random() < 0.12:
            continue
        n_players = rng.choice([1, 1, 2, 2, 3, 4])
        chosen = rng.choices(PLAYERS, weights=weights, k=n_players)
        used = set()
        for name in chosen:
            if name in used:
                continue
            used.add(name)
            for _ in range(rng.randint(1, 40)):
                ip = f"{block}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                rows.append((ip, name, now - rng.randint(60, 25 * 86400)))
        if rng.random() < 0.05 and len(used) >= 2:  # make a tie now and then
            a, b = sorted(used)[:2]
            for name in (a, b):
                rows.append((f"{block}.250.250.{1 if name == a else 2}", name, now - 120))
    dedup = {}
    for ip, name, at in rows:
        dedup[ip] = (ip, name, at)
    return list(dedup.values())


FIGURES_SCRIPT = """
    var nav = performance.getEntriesByType('navigation')[0];
    var res = performance.getEntriesByType('resource');
    var fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return {transfer_bytes: nav.transferSize + res.reduce(function (a, r) { return a + r.transferSize; }, 0),
            html_bytes: nav.transferSize, html_decoded_bytes: nav.decodedBodySize, requests: 1 + res.length,
            first_contentful_paint_ms: fcp ? fcp.startTime : null, dom_content_loaded_ms: nav.domContentLoadedEventEnd};"""


# Paint entries are queued asynchronously: wait (bounded) until first-contentful-paint is there.
WAIT_FOR_PAINT = """
    var done = arguments[arguments.length - 1], started = Date.now();
    (function check() {
      if (performance.getEntriesByName('first-contentful-paint').length || Date.now() - started > 5000) done();
      else setTimeout(check, 50);
    })();"""


def measure(base: str, runs: int = 5) -> None:
    """Cold loads (a fresh browser profile each) of the home page: bytes and first render."""
    import json
    from selenium.webdriver.support.ui import WebDriverWait
    rows = []
    for _ in range(runs):
        driver = make_driver(width=1400, height=1900)
        try:
            driver.get(base + "/")
            WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "live").text == "live")
            driver.execute_async_script(WAIT_FOR_PAINT)
            rows.append(driver.execute_script(FIGURES_SCRIPT))
        finally:
            driver.quit()
    for row in rows:
        print(json.dumps(row))
    fcps = sorted(r["first_contentful_paint_ms"] for r in rows if r["first_contentful_paint_ms"] is not None)
    print(f"median first contentful paint {fcps[len(fcps) // 2]:.0f} ms over {runs} cold loads; "
          f"transferred {rows[0]['transfer_bytes']} bytes in {rows[0]['requests']} requests "
          f"(HTML {rows[0]['html_bytes']} bytes gzip, {rows[0]['html_decoded_bytes']} decoded)")


def main() -> None:
    binary = os.environ.get("IPQUEST_BIN", os.path.join(REPO, ".build", "debug", "ipquest"))
    args = [a for a in sys.argv[1:] if a != "--metrics"]
    target = args[0] if args else os.path.join(REPO, "docs", "screenshot-home.png")
    directory = tempfile.mkdtemp(prefix="ipquest-shot-")
    server = Server(binary, directory, Model())
    try:
        result = server.import_claims(demo_rows(int(time.time())))
        assert result.returncode == 0, result.stderr
        server.start()
        for i in range(24):
            server.claim_from(f"127.0.{i // 8}.{i % 8 + 2}", "jart" if i % 3 else "tunnel-rat")
        server.wait_snapshot()
        driver = make_driver(width=1400, height=1900)
        try:
            driver.get(server.base + "/")
            time.sleep(1.5)
            driver.save_screenshot(target)
        finally:
            driver.quit()
        print(f"wrote {target}")
        if "--metrics" in sys.argv:
            measure(server.base)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
