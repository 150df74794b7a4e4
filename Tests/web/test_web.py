"""The web pages in a real Chromium against a real, seeded `ipquest serve`."""
from __future__ import annotations

import gzip
import html as html_lib
import json
import os
import re
import struct
import time
import urllib.parse
import zlib
from html.parser import HTMLParser

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ESCAPING_NAMES, HOSTILE_NAME, console_errors, make_driver
from screenshot import WAIT_FOR_PAINT
from pysupport import hilbert_point
from seed import RULE, hue_class, player_href

def now() -> int:
    return int(time.time())


def tile_state(driver) -> dict[int, tuple[str, str, list[str]]]:
    """block -> (who text, count text, classes) for all tiles, read in one script call."""
    rows = driver.execute_script("""
        return Array.from(document.querySelectorAll('#map > li.tile')).map(function (li) {
          return [li.id, li.querySelector('.who').textContent, li.querySelector('.n').textContent, li.className,
                  li.querySelector('.who').getAttribute('href')];
        });""")
    return {int(r[0][2:]): (r[1], r[2], r[3].split(), r[4]) for r in rows}


def assert_tiles_match(driver, server):
    tiles = tile_state(driver)
    assert len(tiles) == 256 and sorted(tiles) == list(range(256))
    expected = server.model.tiles(now())
    for block, (holder, tied, count) in expected.items():
        who, n, classes, href = tiles[block]
        if holder is not None:
            assert (who, n) == (holder, str(count)), f"block {block}"
            assert f"h{hue_class(holder)}" in classes, f"block {block} colour"
            assert href == player_href(holder), f"block {block} link"
        elif tied:
            assert (who, n) == ("tied", str(count)) and "tied" in classes, f"block {block}"
        else:
            assert who == "\u2014" and n == "" and "empty" in classes, f"block {block}"
        assert ("reserved" in classes) == (block in (0, 10, 127) or block >= 224), f"block {block} reserved mark"


def leaderboard_rows(driver) -> list[tuple[str, str, str]]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#board > li')).map(function (li) {
          return [li.querySelector('.rank').textContent, li.querySelector('.name').textContent, li.querySelector('.stats').textContent];
        });""")


def expected_rows(server, period, limit=10):
    def plural(n, one, many):
        return f"{n} {one if n == 1 else many}"
    return [[str(r), n, f"{plural(b, 'block', 'blocks')}, {plural(a, 'address', 'addresses')}"]
            for r, n, b, a in server.model.leaderboard(period, now())[:limit]]


def test_home_map_holders_and_counts(server, page, outdir):
    page.get(server.base + "/")
    assert page.find_element(By.ID, "your-ip").text == "127.0.0.1"
    assert_tiles_match(page, server)
    # The essentials are in the server-rendered HTML (first paint, no script needed).
    status, headers, body = server.get("/")
    html = body.decode()
    assert html.count('class="tile') == 256
    assert '<a class="who" href="/players/alice">alice</a><span class="n">30</span>' in html.replace("\n", "")
    page.save_screenshot(os.path.join(outdir, "home.png"))


def test_leaderboard_order_per_period(server, page):
    page.get(server.base + "/")
    assert leaderboard_rows(page) == expected_rows(server, "all")
    seen = {}
    for period in ("hour", "day", "week", "month", "all"):
        link = page.find_element(By.CSS_SELECTOR, f'.periods a[data-period="{period}"]')
        link.click()
        want = expected_rows(server, period)
        WebDriverWait(page, 10).until(lambda d: leaderboard_rows(d) == want)
        assert link.get_attribute("aria-current") == "true"
        assert f"period={period}" in page.current_url
        seen[period] = [r[1] for r in leaderboard_rows(page)]
    # The periods really differ: imported claims age out of the shorter windows.
    assert "oldtimer" in seen["month"] and "oldtimer" not in seen["week"]
    assert "weekly" in seen["week"] and "weekly" not in seen["day"]
    assert "daily" in seen["day"] and "daily" not in seen["hour"]
    # Without script the period is a plain link: the server renders the same list.
    status, _, body = server.get("/?period=week")
    assert status == 200
    names = [html_lib.unescape(n) for n in re.findall(r'<a class="name" href="[^"]*">([^<]*)</a><span class="stats">', body.decode())]
    assert names == [r[1] for r in expected_rows(server, "week")]
    # Show all.
    page.get(server.base + "/")
    total = len(server.model.leaderboard("all", now()))
    assert total > 10
    more = page.find_element(By.ID, "board-more")
    assert more.text == f"Show all {total}"
    more.send_keys(Keys.SPACE)  # a role=button link answers Space, like a button
    WebDriverWait(page, 10).until(lambda d: len(leaderboard_rows(d)) == total)
    assert leaderboard_rows(page) == expected_rows(server, "all", limit=1000)
    assert more.get_attribute("aria-expanded") == "true" and more.text == "Show top 10"
    more.send_keys(Keys.ENTER)
    WebDriverWait(page, 10).until(lambda d: len(leaderboard_rows(d)) == 10)


def test_recent_claims_and_last_updated(server, page):
    page.get(server.base + "/")
    items = page.find_elements(By.CSS_SELECTOR, "#recent > li")
    assert len(items) == 10
    status, _, body = server.get("/api/recent")
    claims = json.loads(body)["claims"]
    texts = [li.find_element(By.CSS_SELECTOR, ".ip").text + " " + li.find_element(By.CSS_SELECTOR, ".name").text for li in items]
    assert texts == [f"{c['ip']} {c['name']}" for c in claims[:10]]
    page.find_element(By.ID, "recent-more").click()
    WebDriverWait(page, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recent > li")) == len(claims))
    assert len(claims) == 50
    updated = page.find_element(By.ID, "updated").text
    assert re.fullmatch(r"\d+ s ago|\d+ min ago", updated), updated


def test_player_page_lines(server, page, outdir):
    for path in ("/players/alice", "/user.html?name=alice"):
        page.get(server.base + path)
        assert page.find_element(By.ID, "player-name").text == "alice"
        lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]
        assert lines == server.model.player_lines("alice", "all", now())
        assert lines == ["1st in 13.0.0.0/8 with 4 addresses", "1st in 127.0.0.0/8 with 30 addresses"]
        total = sum(c.get("alice", 0) for c in server.model.counts("all", now()).values())
        assert page.find_element(By.ID, "p-addresses").text == str(total)
        assert page.find_element(By.ID, "p-held").text == "2"
        bars = page.find_elements(By.CSS_SELECTOR, "svg.bars rect.bar")
        assert len(bars) == 2 and all("held" in b.get_attribute("class") for b in bars)
    page.save_screenshot(os.path.join(outdir, "player.png"))
    # Tied and lower ranks.
    page.get(server.base + "/players/erin")
    lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]
    assert lines == server.model.player_lines("erin", "all", now())
    assert "tied 1st in 12.0.0.0/8 with 2 addresses" in lines
    page.get(server.base + "/players/bob?period=week")
    lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]
    assert lines == server.model.player_lines("bob", "week", now())
    assert "1st in 60.0.0.0/8 with 3 addresses" in lines
    page.get(server.base + "/players/bob")
    assert "2nd in 60.0.0.0/8 with 3 addresses" in [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]


def test_player_map_history_and_plot(server, page, outdir):
    """The player's picture of the IPv4 space, its 30-day chart and ipv4.games' /plot/N, pixel
    by pixel against the model's owners."""
    for player in ("alice", "bob", "oldtimer", "carol", "a/b"):
        page.get(server.base + player_href(player))
        img = page.find_element(By.ID, "player-map")
        WebDriverWait(page, 10).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 256)
        src = urllib.parse.urlsplit(img.get_attribute("src"))
        status, headers, png = server.get(src.path + "?" + src.query)
        assert status == 200 and headers["content-type"] == "image/png"
        assert server.get(src.path + "?" + src.query, {"If-None-Match": headers["etag"]})[0] == 304
        width, height, palette, pixels = decode_png(png)
        assert (width, height) == (256, 256) and len(palette) == 3 * 18 and palette[:3] == b"\xf1\xf1\xf1"
        per16: dict[int, int] = {}
        for ip, (name, _) in server.model.owners.items():
            if name == player:
                o = [int(p) for p in ip.split(".")]
                per16[o[0] << 8 | o[1]] = per16.get(o[0] << 8 | o[1], 0) + 1
        expected = bytearray(65536)
        for area, n in per16.items():
            x, y = hilbert_point(area)
            expected[y * 256 + x] = min(17, n.bit_length())
        assert pixels == expected, player
    page.save_screenshot(os.path.join(outdir, "player-map.png"))
    assert server.get("/player-map.png?name=ghost")[0] == 404

    # The chart: oldtimer's 40 imported addresses (10 days ago), 3 of them taken by bob today.
    page.get(server.base + "/players/oldtimer")
    bars = page.find_elements(By.CSS_SELECTOR, "#history rect.bar")
    days = [b.get_attribute("data-day") for b in bars]
    held = [int(b.get_attribute("data-addresses")) for b in bars]
    today = now() // 86400
    assert len(bars) == 30 and days[-1] == time.strftime("%Y-%m-%d", time.gmtime(today * 86400))
    imported = (now() - 10 * 86400) // 86400
    assert held == [0 if d < imported else 37 if d == today else 40 for d in range(today - 29, today + 1)]

    # /plot/127: addresses per /20 along a 64x64 curve.
    status, headers, png = server.get("/plot/127")
    assert status == 200 and headers["content-type"] == "image/png"
    width, height, _, pixels = decode_png(png)
    assert (width, height) == (64, 64)
    per20: dict[int, int] = {}
    for ip in server.model.owners:
        o = [int(p) for p in ip.split(".")]
        if o[0] == 127:
            per20[o[1] << 4 | o[2] >> 4] = per20.get(o[1] << 4 | o[2] >> 4, 0) + 1
    expected = bytearray(4096)
    for area, n in per20.items():
        x, y = hilbert_point(area, 64)
        expected[y * 64 + x] = min(13, n.bit_length())
    assert pixels == expected and len(per20) > 3
    assert server.get("/plot/256")[0] == 404


def test_unknown_player_is_404(server, page):
    status, headers, body = server.get("/players/nobody-here")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert "No player named <strong>nobody-here</strong>" in body.decode()
    page._allowed_errors = ("404 (Not Found)",)
    page.get(server.base + "/players/nobody-here")
    assert "No player named nobody-here" in page.find_element(By.CSS_SELECTOR, ".notfound").text


def test_block_page_top_and_hilbert_map(server, page, outdir):
    page.get(server.base + "/blocks/127")
    assert page.find_element(By.ID, "block-cidr").text == "127.0.0.0/8"
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in page.find_elements(By.CSS_SELECTOR, "#block-top tbody tr")]
    per = sorted(server.model.counts("all", now())[127].items(), key=lambda kv: (-kv[1], kv[0]))
    assert [r[1:] for r in rows] == [[n, str(c)] for n, c in per[:10]]
    assert rows[0] == ["1", "alice", "30"]
    img = page.find_element(By.ID, "block-map")
    WebDriverWait(page, 10).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 256)
    page.save_screenshot(os.path.join(outdir, "block.png"))

    # The PNG itself: a 256x256 palette image whose pixels follow the Hilbert curve.
    src = img.get_attribute("src")
    path = urllib.parse.urlsplit(src)
    status, headers, png = server.get(path.path + "?" + path.query)
    assert status == 200 and headers["content-type"] == "image/png" and "max-age" in headers["cache-control"]
    status2, _, _ = server.get(path.path, {"If-None-Match": headers["etag"]})
    assert status2 == 304
    width, height, palette, pixels = decode_png(png)
    assert (width, height) == (256, 256)
    leaders = server.model.area_leaders(127)
    assert len(leaders) > 5
    for area, name in leaders.items():
        x, y = hilbert_point(area)
        index = pixels[y * 256 + x]
        assert index == (1 if name is None else 2 + hue_class(name)), (area, name, index)
    assert leaders[(4 << 8) | 4] is None  # the tied /24
    empty = sum(1 for p in pixels if p == 0)
    assert empty == 65536 - len(leaders)
    # Bad block numbers.
    assert server.get("/blocks/256")[0] == 404
    assert server.get("/blocks/01")[0] == 404


def test_reference_curve_is_a_hilbert_curve():
    """The test's own d2xy visits every cell of the 256x256 grid once, in unit steps."""
    points = [hilbert_point(d) for d in range(65536)]
    assert len(set(points)) == 65536
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(points, points[1:]))
    assert points[0] == (0, 0) and points[-1] == (255, 0)


def decode_png(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, palette = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + chunk) == crc, kind
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert (depth, colour) == (8, 3)
        elif kind == b"PLTE":
            palette = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    pixels = bytearray()
    for row in range(height):
        line = raw[row * (width + 1):(row + 1) * (width + 1)]
        assert line[0] == 0
        pixels += line[1:]
    return width, height, palette, pixels


def test_names_render_as_text(server, page):
    # The server refuses markup in names, with the rule...
    status, _, body = server.get("/claim?name=%3Cscript%3E", {"Accept": "text/plain"})
    assert status == 400 and RULE in body.decode()
    # ...and so does the importer.
    bad = server.import_claims([("9.9.9.9", "<script>alert(1)</script>", now())])
    assert bad.returncode == 2 and "invalid character" in bad.stderr
    page.get(server.base + "/?board=all")
    links = page.execute_script("""
        return Array.from(document.querySelectorAll('#board a.name')).map(function (a) { return [a.textContent, a.getAttribute('href')]; });""")
    by_name = dict(links)
    for name in ESCAPING_NAMES + [HOSTILE_NAME]:
        assert name in by_name, name
        assert by_name[name] == player_href(name), name
    # The hostile stored name is text: no element was injected, nothing ran.
    assert page.execute_script("return document.querySelectorAll('img').length") == 0
    assert HOSTILE_NAME in page.find_element(By.ID, "board").text
    status, _, body = server.get("/?board=all")
    assert "<img" not in body.decode() and "&lt;img src=x onerror=alert(1)&gt;&amp;amp;&quot;&#39;" in body.decode()
    # Every imported name's link leads to its own page.
    for name in ESCAPING_NAMES:
        page.get(server.base + player_href(name))
        assert page.find_element(By.ID, "player-name").text == name, name
        lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]
        assert lines == server.model.player_lines(name, "all", now()), name
    # The tile map renders a name as text too (block 51 belongs to the hostile row).
    page.get(server.base + "/")
    who = page.find_element(By.CSS_SELECTOR, "#b-51 .who")
    assert who.text == HOSTILE_NAME


def test_claim_form_validation_and_keyboard(server, page):
    page.get(server.base + "/")
    field = page.find_element(By.ID, "claim-name")
    msg = page.find_element(By.ID, "claim-msg")
    for text in ("<script>", "bad name", "a" * 41, "ok\u00e9"):
        field.clear()
        field.send_keys(text)
        status, _, body = server.get("/claim?name=" + urllib.parse.quote(text, safe=""), {"Accept": "text/plain"})
        assert status == 400
        assert msg.text == body.decode().strip(), text  # same words as the server
        assert field.get_attribute("aria-invalid") == "true"
        assert page.execute_script("return arguments[0].validity.valid", field) is False
    field.clear()
    field.send_keys("kbd-user")
    assert msg.text == ""
    assert page.find_element(By.ID, "claim-url").text == server.base + "/claim?name=kbd-user"
    # Keyboard only: Tab from the top reaches the skip link first, then the form; Enter claims.
    page.get(server.base + "/")
    ActionChains(page).send_keys(Keys.TAB).perform()
    assert page.switch_to.active_element.get_attribute("class") == "skip"
    for _ in range(10):
        if page.switch_to.active_element.get_attribute("id") == "claim-name":
            break
        page.switch_to.active_element.send_keys(Keys.TAB)
    assert page.switch_to.active_element.get_attribute("id") == "claim-name"
    page.switch_to.active_element.send_keys("kbd-user", Keys.ENTER)
    WebDriverWait(page, 10).until(lambda d: d.find_element(By.ID, "claim-msg").text.startswith("The land at"))
    assert page.find_element(By.ID, "claim-msg").text == "The land at 127.0.0.1 was claimed for kbd-user."
    server.model.claim("127.0.0.1", "kbd-user", now())


def test_new_claim_shows_up_without_reload(server, page):
    page.get(server.base + "/")
    marker = page.execute_script("window.__sameDocument = 42; return 1")
    assert marker == 1
    assert tile_state(page)[200][0] == "\u2014"
    server.claim_via_proxy("200.1.2.3", "latecomer")
    WebDriverWait(page, 10, poll_frequency=0.1).until(lambda d: tile_state(d)[200][0] == "latecomer")
    who, n, classes, href = tile_state(page)[200]
    assert n == "1" and "flash" in classes and f"h{hue_class('latecomer')}" in classes
    WebDriverWait(page, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#recent > li .ip").text == "200.1.2.3")
    assert page.execute_script("return window.__sameDocument") == 42  # no reload happened
    assert_tiles_match(page, server)


def test_polls_use_etags(server):
    status, headers, body = server.get("/api/blocks?period=all")
    assert status == 200
    status, _, _ = server.get("/api/blocks?period=all", {"If-None-Match": headers["etag"]})
    assert status == 304
    # The page carries the ETags it was rendered from, so the first poll is a 304.
    status, _, html = server.get("/")
    assert f'data-etag-blocks="{headers["etag"].replace(chr(34), "&quot;")}"' in html.decode()


class AttributeNames(HTMLParser):
    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.names.update(name for name, _ in attrs)


def test_headers_assets_and_no_inline_script(server):
    status, headers, body = server.get("/", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    html = gzip.decompress(body).decode()
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert re.search(r"max-age=\d$", headers["cache-control"]) and int(headers["cache-control"].split("=")[-1]) <= 60
    assert "etag" in headers
    # Scripts only from files, no inline handlers or style attributes, nothing external.
    for tag in re.findall(r"<script[^>]*>", html):
        assert re.search(r'src="/assets/app\.[0-9a-f]{12}\.js"', tag), tag
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    attributes = AttributeNames()
    attributes.feed(html)
    assert attributes.names and not [n for n in attributes.names if n.startswith("on") or n == "style"]
    assert "http://" not in re.sub(r'<code id="claim-url">[^<]*</code>', "", html).replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assets = re.findall(r'(?:href|src)="(/assets/[^"]+)"', html)
    assert len(assets) == 3
    for asset in assets:
        assert re.fullmatch(r"/assets/(app|icon)\.[0-9a-f]{12}\.(css|js|svg)", asset)
        status, h, body = server.get(asset, {"Accept-Encoding": "gzip"})
        assert status == 200 and h["cache-control"] == "public, max-age=31536000, immutable"
        assert h["x-content-type-options"] == "nosniff"
        if h.get("content-encoding") == "gzip":
            plain = gzip.decompress(body)
            assert server.get(asset)[2] == plain
        status, _, _ = server.get(asset, {"If-None-Match": h["etag"]})
        assert status == 304
    assert server.get("/assets/app.000000000000.js")[0] == 404


def test_phone_layout_360px(server, outdir):
    driver = make_driver(width=360, height=780)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True})
        for path in ("/", "/players/alice", "/blocks/127"):
            driver.get(server.base + path)
            overflow = driver.execute_script("return document.documentElement.scrollWidth")
            assert overflow <= 360, (path, overflow)
        driver.get(server.base + "/")
        tile = driver.find_element(By.ID, "b-127")
        assert tile.size["width"] >= 70  # readable: 4 columns on a phone
        driver.save_screenshot(os.path.join(outdir, "home-phone.png"))
        assert not console_errors(driver)
    finally:
        driver.quit()


def test_works_without_javascript(server):
    driver = make_driver(javascript=False)
    try:
        driver.get(server.base + "/players/alice")
        assert driver.find_element(By.ID, "player-name").text == "alice"
        driver.get(server.base + "/")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#map > li.tile")) == 256
        assert driver.find_element(By.CSS_SELECTOR, "#b-127 .who").text == "alice"
        assert driver.find_element(By.CSS_SELECTOR, "#b-127 .n").text == "30"
        assert driver.find_element(By.ID, "your-ip").text == "127.0.0.1"
        assert driver.find_element(By.ID, "live").text == "as loaded"
        driver.find_element(By.CSS_SELECTOR, '.periods a[data-period="month"]').click()
        assert "period=month" in driver.current_url
        names = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#board > li .name")]
        assert names == [r[1] for r in expected_rows(server, "month")]
    finally:
        driver.quit()


def test_cold_load_weight_and_first_render(server, outdir):
    """Bytes transferred for a cold home load and time to first contentful paint."""
    driver = make_driver()
    try:
        driver.get(server.base + "/")
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "live").text == "live")
        driver.execute_async_script(WAIT_FOR_PAINT)
        figures = driver.execute_script("""
            var nav = performance.getEntriesByType('navigation')[0];
            var res = performance.getEntriesByType('resource');
            var paint = {};
            performance.getEntriesByType('paint').forEach(function (p) { paint[p.name] = p.startTime; });
            return {
              document_bytes: nav.transferSize, document_decoded: nav.decodedBodySize,
              resources: res.map(function (r) { return [r.name.replace(location.origin, ''), r.transferSize, r.decodedBodySize]; }),
              total_bytes: nav.transferSize + res.reduce(function (a, r) { return a + r.transferSize; }, 0),
              first_paint_ms: paint['first-paint'], first_contentful_paint_ms: paint['first-contentful-paint'],
              dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd
            };""")
        with open(os.path.join(outdir, "metrics.json"), "w") as f:
            json.dump(figures, f, indent=2)
        print("\nweb metrics:", json.dumps(figures))
        assert figures["total_bytes"] < 100_000
        assert figures["first_contentful_paint_ms"] and figures["first_contentful_paint_ms"] < 5000
        assert not console_errors(driver)
    finally:
        driver.quit()


def test_countries_networks_and_data_centers(server, page, outdir):
    """alice claimed 30 addresses in 127.1/16 (DE, AS3320); bob 18 in 127.2.0/24 (US, AS16509,
    inside AWS's published ranges) plus addresses through the proxy that no database knows."""
    page.get(server.base + "/countries")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in page.find_elements(By.CSS_SELECTOR, "#countries tbody tr")]
    assert rows == [["DE", "30", "1", "alice (30)"], ["US", "18", "1", "bob (18)"]]
    networks = [tr.find_element(By.TAG_NAME, "td").text for tr in page.find_elements(By.CSS_SELECTOR, "#networks tbody tr")]
    assert networks == ["AS3320 Deutsche Telekom AG", "AS16509 Amazon.com, Inc."]
    page.find_element(By.LINK_TEXT, "DE").click()
    WebDriverWait(page, 10).until(lambda d: d.current_url.endswith("/countries/DE"))
    assert page.find_element(By.ID, "area-key").text.startswith("DE")
    assert page.find_element(By.ID, "ruler").text == "alice"
    assert [li.text.split("\n") for li in page.find_elements(By.CSS_SELECTOR, "#area-board > li")] == [["1", "alice", "30 addresses"]]
    page.save_screenshot(os.path.join(outdir, "country.png"))
    page.get(server.base + "/as/16509")
    assert page.find_element(By.ID, "ruler").text == "bob"

    # bob's page: where his addresses are and how many sit in a data center.
    bob_total = sum(c.get("bob", 0) for c in server.model.counts("all", now()).values())
    page.get(server.base + "/players/bob")
    share = page.find_element(By.ID, "p-datacenter").text
    percent = round(18 / bob_total * 100, 1)
    assert share.startswith(f"{percent:g} % of {bob_total} addresses held are in data centers (18)"), share
    assert [li.text for li in page.find_elements(By.CSS_SELECTOR, "#countries-taken > li")] == ["US 18 addresses"]

    # The residential leaderboard leaves bob's 18 cloud addresses out; the toggle switches views.
    page.get(server.base + "/leaderboard?residential=1")
    board = {li.find_element(By.CSS_SELECTOR, ".name").text: li.find_element(By.CSS_SELECTOR, ".stats").text
             for li in page.find_elements(By.CSS_SELECTOR, "#full-board > li")}
    assert board["bob"].endswith(f"{bob_total - 18} addresses"), board
    page.find_element(By.ID, "view-toggle").click()
    WebDriverWait(page, 10).until(lambda d: "residential" not in d.current_url)
    board = {li.find_element(By.CSS_SELECTOR, ".name").text: li.find_element(By.CSS_SELECTOR, ".stats").text
             for li in page.find_elements(By.CSS_SELECTOR, "#full-board > li")}
    assert board["bob"].endswith(f"{bob_total} addresses"), board

    # Bad codes are clear 404s, JSON says the same as the pages.
    status, _, body = server.get("/countries/XYZ")
    assert status == 404 and b"not a country code" in body
    status, _, body = server.get("/api/countries/DE")
    assert status == 200 and json.loads(body)["ruler"] == "alice"
