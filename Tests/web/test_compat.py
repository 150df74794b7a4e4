"""Compatibility with Capture The IP (CTI) and ipv4.games front ends, and the `web.root` static files.

Three servers of this module's own (not the session `server` of conftest):

* `cti`: seeded, `web: root:` a copy of compat/cti (a stand-in of CTI's index.html, users.html
  and cti.js that reads the same endpoints and fields) plus static-serving fixtures: assets of
  several types, a directory, files named like built-in routes, and a secret file *beside* the
  root with symlinks inside the root pointing at it.
* `games`: seeded the same way, `web: root:` a copy of compat/ipv4games (a stand-in of the
  original ipv4.games index.html and user.html, which compute everything from `/score`). That
  root has no users.html, so `/users.html` is the built-in player page.
* `unattributed`: the browser's own address (127.0.0.1) is a trusted proxy that names nobody,
  so `/ip` cannot answer 200, and the ipv4.games stand-in shows its IPv6 notice.

Every expected value is computed here from the `Model` (the last claim of an address wins),
independently of the server: CTI's rankings (only players who alone lead at least one block;
`total_claims` counts only the addresses in those blocks), block holders, per-player ranks with
ties and gaps, and ipv4.games' client-side leaders and top players.
"""
from __future__ import annotations

import calendar
import gzip
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import uuid
import zlib

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from pysupport import alarm, wait_until
from seed import PROXY, Model, Server, _die_with_parent, player_href

COMPAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat")
NOW = int(time.time())
DAY = 86400
PERIODS = ("all", "year", "month", "week", "day", "hour")
ODD_NAMES = ["x+y", "a/b", "@:/.!-_*+^"]


def now() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------------------------
# Seed data

def compat_rows() -> list[tuple[str, str, int]]:
    """Imported claims. Every timestamp is far from a window edge for the length of a run."""
    rows: list[tuple[str, str, int]] = []

    def put(prefix: str, n: int, name: str, at: int) -> None:
        rows.extend((f"{prefix}.{i + 1}", name, at) for i in range(n))

    # Windows: `ancient` only counts all time, `yearling` from year up, and so on.
    put("20.0.0", 6, "ancient", NOW - 400 * DAY)
    put("22.0.0", 2, "ancient", NOW - 400 * DAY)
    put("20.1.0", 4, "yearling", NOW - 100 * DAY)
    put("21.0.0", 5, "monthly", NOW - 20 * DAY)
    put("22.1.0", 3, "weekly", NOW - 3 * DAY)
    put("23.0.0", 4, "daily", NOW - 5 * 3600)
    put("24.0.0", 2, "daily", NOW - 5 * 3600)
    put("24.1.0", 3, "hourly", NOW - 20 * 60)
    two_hours = NOW - 2 * 3600
    # CTI's rules: alpha leads block 30 (10) and is second in 31 (20 of beta's 25): alpha has more
    # addresses than beta, but beta's total_claims (addresses in blocks held) is higher.
    put("30.0.0", 10, "alpha", two_hours)
    put("30.1.0", 5, "tiny", two_hours)          # no block, < 10 addresses: listed nowhere
    put("31.0.0", 25, "beta", two_hours)         # 31.0.0.1 is taken over live by livewire
    put("31.1.0", 20, "alpha", two_hours)
    put("31.2.0", 12, "lurker", two_hours)       # no block, >= 10 addresses: ipv4.games lists it
    put("32.0.0", 3, "gamma", two_hours)         # block 32: tied 3-3, eps third (ranks 1, 1, 3)
    put("32.1.0", 3, "delta", two_hours)
    put("32.2.0", 1, "eps", two_hours)
    put("33.0.0", 4, "iota", two_hours)          # iota and kappa: equal keys, ordered by name
    put("34.0.0", 4, "kappa", two_hours)
    for block in (40, 41, 42):
        put(f"{block}.0.0", 2, "omega", two_hours)  # three blocks: first everywhere it counts
    put("50.0.0", 2, "x+y", two_hours)           # names that need URL encoding
    put("50.1.0", 1, "a/b", two_hours)
    put("51.0.0", 1, "@:/.!-_*+^", two_hours)
    return rows


class CompatServer(Server):
    """`Server` with a choice of trusted proxies (the base class trusts PROXY only)."""

    def __init__(self, binary: str, directory: str, model: Model, trusted: tuple[str, ...] = (PROXY + "/32",)):
        super().__init__(binary, directory, model)
        self.trusted = trusted
        self.live: set[str] = set()      # addresses claimed through HTTP (times known to +-1 s)
        self.answers: dict[str, tuple[int, dict, bytes]] = {}
        self.root = ""
        self.site = ""

    def start(self, config: str | None = None) -> None:
        log = open(self.log_path, "w")
        args = [self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database", self.database,
                "--durability", "normal"]
        for cidr in self.trusted:
            args += ["--trusted-proxy", cidr]
        if config:
            args += ["--config", config]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        wait_until(lambda: self.get("/healthz")[0] == 200, "ipquest serve answering /healthz", timeout=30,
                   process=self, tolerate=(OSError,))

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"ipquest serve exited with {self.process.returncode}: {open(self.log_path).read()}")

    def claim_with(self, client: str, name: str, accept: str) -> tuple[int, dict, bytes]:
        """A claim through the trusted proxy asking for `accept`; recorded in the model."""
        answer = self.get("/claim?name=" + urllib.parse.quote(name, safe=""),
                          {"Accept": accept, "X-Forwarded-For": client}, source=PROXY)
        if answer[0] == 200:
            self.model.claim(client, name, now())
            self.live.add(client)
        return answer


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00"))
            + chunk(b"IEND", b""))


SHADOWED = ["score", "recent", "ip", "claim", "api/ip", "api/recent", "api/blocks", "api/users", "api/ranks/all"]


def make_site(directory: str, source: str, fixtures: bool) -> tuple[str, str]:
    """Copies compat/`source` to DIRECTORY/site/root. With `fixtures`, adds the static-serving
    fixtures and the secrets beside the root. Returns (site, root)."""
    site = os.path.join(directory, "site")
    root = os.path.join(site, "root")
    shutil.copytree(os.path.join(COMPAT, source), root)
    if fixtures:
        with open(os.path.join(root, "pixel.png"), "wb") as f:
            f.write(tiny_png())
        os.makedirs(os.path.join(root, "sub"))
        with open(os.path.join(root, "sub", "page.txt"), "w") as f:
            f.write("a page in a directory\n")
        for name in SHADOWED:
            path = os.path.join(root, *name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(f"SHADOW file {name}\n")
        marker = uuid.uuid4().hex
        with open(os.path.join(site, "secret.txt"), "w") as f:
            f.write(f"SECRET-{marker}\n")
        # A sibling whose name starts with the root's: a prefix check without "/" lets it through.
        os.makedirs(os.path.join(site, "rootx"))
        with open(os.path.join(site, "rootx", "secret2.txt"), "w") as f:
            f.write(f"SECRET2-{marker}\n")
        os.symlink(os.path.join("..", "secret.txt"), os.path.join(root, "leak.txt"))
        os.symlink("..", os.path.join(root, "outside"))
        os.symlink(os.path.join(site, "rootx"), os.path.join(root, "elsewhere"))
    return site, root


def write_config(directory: str, root: str) -> str:
    path = os.path.join(directory, "compat.yaml")
    with open(path, "w") as f:
        f.write(f"web:\n  root: {json.dumps(root)}\n")
    return path


def seed_live(srv: CompatServer) -> None:
    """Claims over HTTP once the server runs (the model learns each one)."""
    for i in range(3):
        srv.claim_via_proxy(f"60.0.0.{i + 1}", "livewire")
        srv.live.add(f"60.0.0.{i + 1}")
    srv.claim_via_proxy("31.0.0.1", "livewire")  # takes an address of beta's: the last claim wins
    srv.live.add("31.0.0.1")
    for i in range(2):
        srv.claim_from(f"127.6.0.{i + 1}", "sourcey")  # real source addresses
        srv.live.add(f"127.6.0.{i + 1}")
    # Block 61 ends tied 1-1; the answers are kept for test_claim_answers.
    srv.answers["text"] = srv.claim_with("61.0.0.1", "texty", "text/plain")
    srv.answers["html"] = srv.claim_with("61.0.0.2", "htmly", "text/html")
    assert srv.answers["text"][0] == 200, srv.answers["text"]
    assert srv.answers["html"][0] == 200, srv.answers["html"]


def wait_published(srv: CompatServer) -> None:
    """Until the snapshot holds every address of the model and the newest claim."""
    def done():
        status, _, body = srv.get("/healthz")
        if status != 200 or json.loads(body)["addresses"] != len(srv.model.owners):
            return False
        status, _, body = srv.get("/recent")
        newest = max(srv.model.owners.items(), key=lambda kv: kv[1][1])[0]
        if status != 200 or not any(ip_text(e[0]) == newest for e in json.loads(body)["recent"][:20]):
            return False
        # The block views are published in the same swap as /recent: they count every address too.
        status, _, body = srv.get("/api/blocks")
        return status == 200 and sum(b["total"] for b in json.loads(body)["blocks"]) == len(srv.model.owners)
    wait_until(done, "the snapshot showing every seeded claim", timeout=20, interval=0.1, process=srv,
               tolerate=(OSError, ValueError, KeyError))


def start_seeded(binary: str, source: str, fixtures: bool) -> CompatServer:
    directory = tempfile.mkdtemp(prefix=f"ipquest-compat-{source}-")
    srv = CompatServer(binary, directory, Model())
    try:
        with alarm(150, f"starting the {source} server"):
            srv.site, srv.root = make_site(directory, source, fixtures)
            result = srv.import_claims(compat_rows())
            assert result.returncode == 0, result.stderr
            srv.start(config=write_config(directory, srv.root))
            seed_live(srv)
            wait_published(srv)
    except BaseException:
        stop(srv)
        raise
    return srv


def stop(srv: CompatServer) -> None:
    srv.stop()
    if os.environ.get("WEB_TEST_KEEP") != "1":
        shutil.rmtree(srv.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def cti(binary):
    srv = start_seeded(binary, "cti", fixtures=True)
    try:
        yield srv
    finally:
        stop(srv)


@pytest.fixture(scope="module")
def games(binary):
    srv = start_seeded(binary, "ipv4games", fixtures=False)
    try:
        yield srv
    finally:
        stop(srv)


# ---------------------------------------------------------------------------------------------
# The independent model of what the server and the pages must show

def ip_text(value: int) -> str:
    return ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))


def window_start(period: str, at: int) -> int | None:
    """Claims at or after this count in the period. The year starts at the UTC day 365 days ago."""
    if period == "all":
        return None
    if period == "year":
        return (at - 365 * DAY) // DAY * DAY
    return at - {"month": 30 * DAY, "week": 7 * DAY, "day": DAY, "hour": 3600}[period]


def counts(model: Model, period: str, at: int) -> dict[int, dict[str, int]]:
    start = window_start(period, at)
    out: dict[int, dict[str, int]] = {}
    for ip, (name, claimed) in model.owners.items():
        if start is not None and claimed < start:
            continue
        block = int(ip.split(".")[0])
        out.setdefault(block, {}).setdefault(name, 0)
        out[block][name] += 1
    return out


def sole_leader(per: dict[str, int]) -> str | None:
    ranked = sorted(per.items(), key=lambda kv: -kv[1])
    if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
        return ranked[0][0]
    return None


def cti_rankings(model: Model, period: str, at: int) -> list[dict]:
    """CTI's ranking: players who alone lead >= 1 block; total_claims = their addresses in those
    blocks; by blocks held, then total_claims (CTI orders no further), then all their addresses in
    the period, then name (IPQuest's leaderboard order). Equal (blocks, total_claims) share a rank."""
    c = counts(model, period, at)
    held: dict[str, list[int]] = {}
    everything: dict[str, int] = {}
    for block, per in c.items():
        leader = sole_leader(per)
        if leader is not None:
            held.setdefault(leader, []).append(block)
        for name, n in per.items():
            everything[name] = everything.get(name, 0) + n
    rows = [{"nick": name, "name": name, "blocks": sorted(blocks), "total_claims": sum(c[b][name] for b in blocks),
             "addresses": everything[name]} for name, blocks in held.items()]
    rows.sort(key=lambda r: (-len(r["blocks"]), -r["total_claims"], -r["addresses"], r["nick"]))
    for i, r in enumerate(rows):
        key = (len(r["blocks"]), r["total_claims"])
        r["rank"] = rows[i - 1]["rank"] if i and key == (len(rows[i - 1]["blocks"]), rows[i - 1]["total_claims"]) else i + 1
    return rows


def cti_blocks(model: Model, period: str, at: int) -> list[dict]:
    out = []
    for block, per in sorted(counts(model, period, at).items()):
        ranked = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ranked[0]
        second = ranked[1] if len(ranked) > 1 else None
        tied = second is not None and second[1] == top[1]
        out.append({"block": block, "holder": None if tied else top[0], "tied": tied, "is_tied": tied,
                    "nick": "tied" if tied else top[0], "count": top[1], "claims": top[1],
                    "runner_up": second[0] if second else None, "runner_up_count": second[1] if second else 0,
                    "total": sum(per.values()), "players": len(per)})
    return out


def cti_user(model: Model, name: str, at: int) -> list[dict]:
    rows = []
    for block, per in sorted(counts(model, "all", at).items()):
        if name not in per:
            continue
        mine = per[name]

        def rank_of(n: int) -> int:
            return 1 + sum(1 for v in per.values() if v > n)
        rows.append({"block": block, "rank": rank_of(mine), "max_rank": max(rank_of(v) for v in per.values()),
                     "is_tied": any(v == mine for other, v in per.items() if other != name),
                     "claims": mine, "nick": name, "players": len(per)})
    return rows


def ordinal(n: int) -> str:
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def addresses(n: int) -> str:
    return f"{n} {'address' if n == 1 else 'addresses'}"


def standing_lines(model: Model, name: str, at: int) -> list[str]:
    """"{Tied }{ordinal} in block B.0.0.0/8 with N addresses", as both stand-ins write them."""
    return [f"{'Tied ' if r['is_tied'] else ''}{ordinal(r['rank'])} in block {r['block']}.0.0.0/8 with {addresses(r['claims'])}"
            for r in cti_user(model, name, at)]


def games_top_players(model: Model, at: int) -> list[str]:
    """ipv4.games' Top Players: >= 1 block or >= 10 addresses; blocks, then addresses (then name)."""
    c = counts(model, "all", at)
    owned: dict[str, list[int]] = {}
    total: dict[str, int] = {}
    for block, per in sorted(c.items()):
        leader = sole_leader(per)
        if leader is not None:
            owned.setdefault(leader, []).append(block)
        for name, n in per.items():
            total[name] = total.get(name, 0) + n
    names = [n for n in total if owned.get(n) or total[n] >= 10]
    names.sort(key=lambda n: (-len(owned.get(n, [])), -total[n], n))
    lines = []
    for n in names:
        line = f"{n} with {addresses(total[n])}"
        if owned.get(n):
            k = len(owned[n])
            line += f", and {k} {'block' if k == 1 else 'blocks'} controlled ... " + ", ".join(map(str, owned[n]))
        lines.append(line)
    return lines


def check_recent(srv: CompatServer, entries: list[tuple[str, str, int]]) -> None:
    """Newest first, at most 50, every entry the current owner with its claim time, and nothing
    newer than the oldest listed left out."""
    owners = srv.model.owners
    assert len(entries) == min(50, len(owners))
    assert len({ip for ip, _, _ in entries}) == len(entries), "an address listed twice"
    times = [at for _, _, at in entries]
    assert times == sorted(times, reverse=True), "not newest first"
    for ip, name, at in entries:
        assert ip in owners, ip
        assert name == owners[ip][0], (ip, name, owners[ip])
        slack = 2 if ip in srv.live else 0
        assert abs(at - owners[ip][1]) <= slack, (ip, at, owners[ip])
    listed = {ip for ip, _, _ in entries}
    missing = [ip for ip, (_, at) in owners.items() if at > min(times) + 2 and ip not in listed]
    assert not missing, f"newer claims left out: {missing}"


def check_timestamps(doc: dict) -> None:
    """`updated_at` (unix seconds) and `last_updated_at` (RFC 3339, UTC) name the same moment."""
    updated = doc["updated_at"]
    assert isinstance(updated, int) and NOW - 3600 <= updated <= now() + 2, updated
    text = doc["last_updated_at"]
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:00)", text)
    assert m, f"last_updated_at is not RFC 3339 UTC: {text!r}"
    assert calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) == updated, (text, updated)


def get_json(srv: CompatServer, path: str, **kw) -> dict:
    status, headers, body = srv.get(path, **kw)
    assert status == 200, (path, status, body[:300])
    assert headers["content-type"].startswith("application/json"), (path, headers["content-type"])
    return json.loads(body)


# ---------------------------------------------------------------------------------------------
# Browser helpers

def wait_ready(driver, parts: list[str], timeout: float = 15) -> None:
    """Until <body data-ready> has every part; fails at once when the page reports a load error."""
    def state(d):
        return d.execute_script("return document.body ? [document.body.dataset.ready || '', document.body.dataset.error || '',"
                                " (document.getElementById('load-error') || {}).textContent || ''] : null")
    def done(d):
        s = state(d)
        if s is None:
            return False
        if s[1]:
            raise AssertionError(f"the page failed to load {s[1]}: {s[2]}")
        return all(p in s[0].split() for p in parts)
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(done)


def cti_rank_rows(driver) -> list[list]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#top-claimers > li')).map(function (li) {
          return [li.querySelector('a.nick').textContent, li.querySelector('a.nick').getAttribute('href'),
                  li.querySelector('.total').textContent, li.querySelector('.nblocks').textContent,
                  li.querySelector('.blocks').textContent];
        });""")


def expected_cti_rows(model: Model, period: str) -> list[list]:
    return [[r["nick"], "/users.html?name=" + urllib.parse.quote(r["nick"], safe="-_.!~*'()"), str(r["total_claims"]),
             str(len(r["blocks"])), ", ".join(map(str, r["blocks"]))] for r in cti_rankings(model, period, now())]


def tile_rows(driver, nick: str, count: str, tied: str, empty: str) -> dict[int, list]:
    rows = driver.execute_script(f"""
        return Array.from(document.querySelectorAll('#segments > div')).map(function (el) {{
          return [el.id, el.querySelector('.{nick}').textContent, el.querySelector('.{count}').textContent,
                  el.classList.contains('{tied}'), el.classList.contains('{empty}')];
        }});""")
    return {int(r[0][2:]): r[1:] for r in rows}


def check_tiles(driver, model: Model, nick: str, count: str, tied: str, empty: str) -> None:
    tiles = tile_rows(driver, nick, count, tied, empty)
    assert sorted(tiles) == list(range(256))
    c = counts(model, "all", now())
    for block in range(256):
        per = c.get(block)
        got = tiles[block]
        if not per:
            assert got == ["", "", False, True], (block, got)
            continue
        top = max(per.values())
        leader = sole_leader(per)
        want = [leader if leader is not None else "(tied)", f"({addresses(top)})", leader is None, False]
        assert got == want, (block, got, want)


# ---------------------------------------------------------------------------------------------
# The CTI stand-in

def test_cti_home_renders_tiles_rankings_recent(cti, page):
    page.get(cti.base + "/")
    wait_ready(page, ["ip", "recent", "ranks:all", "blocks"])
    assert page.find_element(By.ID, "user-ip").text == "127.0.0.1"  # /api/ip gave v4: true
    assert not page.find_element(By.ID, "ip-note").is_displayed()
    check_tiles(page, cti.model, "s-nick", "s-count", "s-tied", "s-empty")
    # A few tiles spelled out, so a wrong model cannot pass with a wrong server.
    tiles = tile_rows(page, "s-nick", "s-count", "s-tied", "s-empty")
    assert tiles[31] == ["beta", "(24 addresses)", False, False]
    assert tiles[32] == ["(tied)", "(3 addresses)", True, False]
    assert tiles[61] == ["(tied)", "(1 address)", True, False]
    assert tiles[20] == ["ancient", "(6 addresses)", False, False]
    assert tiles[99] == ["", "", False, True]
    assert cti_rank_rows(page) == expected_cti_rows(cti.model, "all")
    names = [r[0] for r in cti_rank_rows(page)]
    # beta before alpha (total_claims 24 > 10 though alpha has 30 addresses); no tied or blockless player.
    assert names[:3] == ["omega", "beta", "alpha"]
    assert not {"gamma", "delta", "eps", "lurker", "tiny", "texty", "htmly"} & set(names)
    assert names.index("daily") < names.index("iota") < names.index("kappa")
    # Recent claims: what /api/recent says, in its order, and that is what the model says.
    recent = page.execute_script("""
        return Array.from(document.querySelectorAll('#recent-claims > li')).map(function (li) {
          return [li.querySelector('.ip').textContent, li.querySelector('a.nick').textContent,
                  Number(li.querySelector('.ago').dataset.claimedAt)];
        });""")
    api = get_json(cti, "/api/recent")
    assert [list(r) for r in recent] == [[c["ip"], c["nick"], c["claimed_at"]] for c in api["claims"]]
    check_recent(cti, [tuple(r) for r in recent])
    # last_updated_at went through Date.parse to a real moment.
    updated = page.find_element(By.ID, "last-updated")
    ms = float(updated.get_attribute("data-ms"))
    assert (NOW - 3600) * 1000 <= ms <= (now() + 5) * 1000, updated.get_attribute("data-raw")
    assert updated.text.startswith("(Last updated ") and "unknown" not in updated.text


def test_cti_rank_periods_follow_the_hash(cti, page):
    page.get(cti.base + "/")
    wait_ready(page, ["ranks:all", "blocks"])
    seen = {}
    for period in ("year", "month", "week", "day", "hour", "all"):
        page.execute_script("location.hash = arguments[0]", period)  # no reload: hashchange
        WebDriverWait(page, 10).until(
            lambda d: d.find_element(By.ID, "top-claimers").get_attribute("data-period") == period)
        rows = cti_rank_rows(page)
        assert rows == expected_cti_rows(cti.model, period), period
        seen[period] = [r[0] for r in rows]
    # The windows really differ.
    assert "ancient" in seen["all"] and "ancient" not in seen["year"]
    assert "yearling" in seen["year"] and "yearling" not in seen["month"]
    assert "monthly" in seen["month"] and "monthly" not in seen["week"]
    assert "weekly" in seen["week"] and "weekly" not in seen["day"]
    assert "daily" in seen["day"] and "daily" not in seen["hour"]
    assert seen["hour"][0] == "livewire"  # alone in 31 and 60 within the hour
    # The select sets the hash, as CTI's does; a fresh load honours the hash.
    Select(page.find_element(By.ID, "rank-period")).select_by_value("week")
    WebDriverWait(page, 10).until(lambda d: d.find_element(By.ID, "top-claimers").get_attribute("data-period") == "week")
    assert page.current_url.endswith("#week")
    page.get("about:blank")
    page.get(cti.base + "/#day")
    wait_ready(page, ["ranks:day"])
    assert cti_rank_rows(page) == expected_cti_rows(cti.model, "day")


@pytest.mark.parametrize("name", ["alpha", "eps", "gamma", "beta", "livewire", "nobody-here"] + ODD_NAMES)
def test_cti_users_page(cti, page, name):
    page.get(cti.base + "/users.html?name=" + urllib.parse.quote(name, safe=""))
    wait_ready(page, ["user"])
    assert page.find_element(By.ID, "user-name").text == name
    lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#user-blocks > li.standing")]
    assert lines == standing_lines(cti.model, name, now())
    total = sum(per.get(name, 0) for per in counts(cti.model, "all", now()).values())
    assert page.find_element(By.ID, "total-addresses").text == str(total)
    spelled = {
        "alpha": ["1st in block 30.0.0.0/8 with 10 addresses", "2nd in block 31.0.0.0/8 with 20 addresses"],
        "eps": ["3rd in block 32.0.0.0/8 with 1 address"],
        "gamma": ["Tied 1st in block 32.0.0.0/8 with 3 addresses"],
        "a/b": ["2nd in block 50.0.0.0/8 with 1 address"],
        "nobody-here": [],
    }
    if name in spelled:
        assert lines == spelled[name]


# ---------------------------------------------------------------------------------------------
# The ipv4.games stand-in

def test_ipv4games_home_top_players_and_leaders(games, page):
    page.get(games.base + "/")
    wait_ready(page, ["ip", "score"])
    assert page.find_element(By.ID, "my-ip").text == "127.0.0.1"
    assert not page.find_element(By.ID, "ipv6-box").is_displayed()
    lines = [li.get_attribute("textContent") for li in page.find_elements(By.CSS_SELECTOR, "#top-players > li")]
    assert lines == games_top_players(games.model, now())
    names = [line.split(" with ")[0] for line in lines]
    assert "lurker" in names and "tiny" not in names and "gamma" not in names  # >= 10 addresses, or a block
    assert names[0] == "omega"
    assert names.index("alpha") < names.index("beta")  # ipv4.games orders by all addresses (30 > 24)
    links = page.execute_script("return Array.from(document.querySelectorAll('#top-players a.name')).map(function (a) {"
                                " return a.getAttribute('href'); })")
    assert links[names.index("x+y")] == "/user.html?name=x%2By"
    check_tiles(page, games.model, "segment-nick", "segment-count", "segment-tied", "segment-empty")
    tiles = tile_rows(page, "segment-nick", "segment-count", "segment-tied", "segment-empty")
    assert tiles[32] == ["(tied)", "(3 addresses)", True, False]
    assert tiles[127] == ["sourcey", "(2 addresses)", False, False]
    assert page.find_element(By.CSS_SELECTOR, "#b-7 .segment-cidr").text == "7.0.0.0/8"


@pytest.mark.parametrize("name", ["alpha", "eps", "gamma", "lurker", "nobody-here"] + ODD_NAMES)
def test_ipv4games_user_page(games, page, name):
    page.get(games.base + "/user.html?name=" + urllib.parse.quote(name, safe=""))
    wait_ready(page, ["user"])
    assert page.find_element(By.ID, "my-name").text == name
    lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]
    assert lines == standing_lines(games.model, name, now())
    total = sum(per.get(name, 0) for per in counts(games.model, "all", now()).values())
    assert page.find_element(By.ID, "total-addresses").text == str(total)


def test_ipv4games_root_wins_and_builtin_users_page(games, page):
    """The root's index.html and user.html are served as they are; it has no users.html, so
    /users.html?name= is the built-in player page."""
    with open(os.path.join(games.root, "index.html"), "rb") as f:
        index = f.read()
    with open(os.path.join(games.root, "user.html"), "rb") as f:
        user = f.read()
    for path in ("/", "/index.html", "/?utm=1"):
        status, headers, body = games.get(path)
        assert (status, body) == (200, index), path
        assert headers["content-type"].startswith("text/html"), path
    status, _, body = games.get("/user.html?name=alpha")
    assert (status, body) == (200, user)
    status, headers, body = games.get("/users.html?name=alpha")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert body != user and b"player-name" in body, body[:300]
    page.get(games.base + "/users.html?name=alpha")
    assert page.find_element(By.ID, "player-name").text == "alpha"
    lines = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#standings > li")]
    assert lines == games.model.player_lines("alpha", "all", now())
    page.get(games.base + "/users.html?name=" + urllib.parse.quote("x+y", safe=""))
    assert page.find_element(By.ID, "player-name").text == "x+y"


@pytest.mark.parametrize("path,rel", [("/user.html?name=alpha", "user.html"), ("/user.html", "user.html"),
                                      ("/", "index.html"), ("/ipv4games.js", "ipv4games.js")])
def test_ipv4games_files_revalidate(games, path, rel):
    """A root file served where a built-in page also lives (user.html) revalidates like any other."""
    status, headers, body = games.get(path)
    assert status == 200 and body == read_root(games, rel)
    etag = headers.get("etag")
    assert etag, f"{path}: no ETag"
    status, _, body = games.get(path, {"If-None-Match": etag})
    assert status == 304 and body == b"", (path, status)


def test_ipv4games_ipv6_notice_when_ip_is_not_200(binary, page):
    """A visitor /ip cannot answer for (here: a trusted proxy that names nobody) gets the notice."""
    directory = tempfile.mkdtemp(prefix="ipquest-compat-unattributed-")
    srv = CompatServer(binary, directory, Model(), trusted=(PROXY + "/32", "127.0.0.1/32"))
    try:
        _, root = make_site(directory, "ipv4games", fixtures=False)
        assert srv.import_claims([("70.0.0.1", "solo", NOW - 600)]).returncode == 0
        srv.start(config=write_config(directory, root))
        status, headers, _ = srv.get("/ip")
        assert status != 200, "the precondition: /ip cannot name this client"
        page._allowed_errors = (f"{status} (",)
        page.get(srv.base + "/")
        wait_ready(page, ["ip", "score"])
        assert page.find_element(By.ID, "ipv6-box").is_displayed()
        assert not page.find_element(By.ID, "claim-box").is_displayed()
        assert "only supports IPv4" in page.find_element(By.ID, "ipv6-box").text
        # /score does not depend on the visitor.
        assert tile_rows(page, "segment-nick", "segment-count", "segment-tied", "segment-empty")[70] == \
            ["solo", "(1 address)", False, False]
    finally:
        stop(srv)


# ---------------------------------------------------------------------------------------------
# API shapes, checked against the model

def test_api_ip(cti):
    for source, headers, want in [(None, {}, "127.0.0.1"), ("127.9.8.7", {}, "127.9.8.7"),
                                  (PROXY, {"X-Forwarded-For": "9.9.9.9"}, "9.9.9.9")]:
        doc = get_json(cti, "/api/ip", headers=headers, source=source)
        assert doc["ip"] == want and doc["version"] == 4 and doc["v4"] is True, doc
        assert "datacenter" in doc and doc["datacenter"] is None, doc
    status, headers, body = cti.get("/ip")
    assert status == 200 and body == b"127.0.0.1\n"
    assert headers["content-type"].startswith("text/plain")
    assert headers.get("access-control-allow-origin") == "*", headers


def test_api_recent(cti):
    doc = get_json(cti, "/api/recent")
    assert isinstance(doc["updated_at"], int) and NOW - 3600 <= doc["updated_at"] <= now() + 2
    for c in doc["claims"]:
        assert c["nick"] == c["name"], c
        assert c["block"] == int(c["ip"].split(".")[0]), c
        assert isinstance(c["claimed_at"], int), c
    check_recent(cti, [(c["ip"], c["nick"], c["claimed_at"]) for c in doc["claims"]])
    # The ipv4.games shape says the same.
    old = get_json(cti, "/recent")
    assert isinstance(old["now"], list) and len(old["now"]) == 2 and all(isinstance(x, int) for x in old["now"])
    assert [(ip_text(r[0]), r[1], r[2]) for r in old["recent"]] == [(c["ip"], c["nick"], c["claimed_at"]) for c in doc["claims"]]


@pytest.mark.parametrize("period", [None] + list(PERIODS))
def test_api_blocks(cti, period):
    doc = get_json(cti, "/api/blocks" + (f"?period={period}" if period else ""))
    period = period or "all"
    assert doc["period"] == period
    check_timestamps(doc)
    want = cti_blocks(cti.model, period, now())
    assert [b["block"] for b in doc["blocks"]] == [b["block"] for b in want], "only blocks with claims, ascending"
    for got, expected in zip(doc["blocks"], want):
        assert {k: got.get(k, "<missing>") for k in expected} == expected, got["block"]


def test_api_blocks_pinned_values(cti):
    blocks = {b["block"]: b for b in get_json(cti, "/api/blocks")["blocks"]}
    assert 99 not in blocks and 0 not in blocks
    assert (blocks[32]["holder"], blocks[32]["tied"], blocks[32]["is_tied"], blocks[32]["nick"], blocks[32]["claims"],
            blocks[32]["count"]) == (None, True, True, "tied", 3, 3)
    assert (blocks[32]["runner_up"], blocks[32]["runner_up_count"], blocks[32]["total"], blocks[32]["players"]) == \
        ("gamma", 3, 7, 3)
    assert (blocks[31]["holder"], blocks[31]["nick"], blocks[31]["claims"], blocks[31]["runner_up"],
            blocks[31]["runner_up_count"], blocks[31]["total"], blocks[31]["players"]) == \
        ("beta", "beta", 24, "alpha", 20, 57, 4)
    assert (blocks[60]["holder"], blocks[60]["runner_up"], blocks[60]["runner_up_count"]) == ("livewire", None, 0)


@pytest.mark.parametrize("path,period", [("/api/ranks", "week")] + [(f"/api/ranks/{p}", p) for p in PERIODS])
def test_api_ranks(cti, path, period):
    doc = get_json(cti, path)
    assert doc["period"] == period
    check_timestamps(doc)
    want = cti_rankings(cti.model, period, now())
    got = [{k: r.get(k, "<missing>") for k in ("nick", "name", "blocks", "total_claims", "addresses", "rank")}
           for r in doc["rankings"]]
    assert got == want


def test_api_ranks_pinned_values(cti):
    rows = get_json(cti, "/api/ranks/all")["rankings"]
    by = {r["nick"]: r for r in rows}
    assert [r["nick"] for r in rows[:3]] == ["omega", "beta", "alpha"]
    assert (by["omega"]["blocks"], by["omega"]["total_claims"], by["omega"]["rank"]) == ([40, 41, 42], 6, 1)
    assert (by["alpha"]["blocks"], by["alpha"]["total_claims"], by["alpha"]["addresses"]) == ([30], 10, 30)
    assert by["iota"]["rank"] == by["kappa"]["rank"] == by["daily"]["rank"]  # 1 block, 4 addresses each
    assert not {"gamma", "delta", "eps", "lurker", "tiny", "texty", "htmly"} & set(by)
    hour = get_json(cti, "/api/ranks/hour")["rankings"]
    assert (hour[0]["nick"], hour[0]["blocks"], hour[0]["total_claims"]) == ("livewire", [31, 60], 4)
    assert 400 <= cti.get("/api/ranks/decade")[0] < 500


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma", "eps", "omega", "livewire", "ancient"] + ODD_NAMES)
def test_api_users(cti, name):
    doc = get_json(cti, "/api/users?name=" + urllib.parse.quote(name, safe=""))
    assert doc["name"] == name
    check_timestamps(doc)
    want = cti_user(cti.model, name, now())
    assert want
    got = [{k: r.get(k, "<missing>") for k in want[0]} for r in doc["rankings"]]
    assert got == want


def test_api_users_pinned_unknown_and_missing(cti):
    rows = get_json(cti, "/api/users?name=eps")["rankings"]
    assert rows == [{**rows[0], "block": 32, "rank": 3, "max_rank": 3, "is_tied": False, "claims": 1, "nick": "eps", "players": 3}]
    rows = get_json(cti, "/api/users?name=gamma")["rankings"]
    assert [(r["rank"], r["max_rank"], r["is_tied"]) for r in rows] == [(1, 3, True)]
    doc = get_json(cti, "/api/users?name=nobody-here")
    assert doc["name"] == "nobody-here" and doc["rankings"] == []
    status, _, _ = cti.get("/api/users")
    assert status == 400


def test_score_matches_model(cti):
    for path, period in [("/score", "all"), ("/score/month", "month"), ("/score/week", "week"),
                         ("/score/day", "day"), ("/score/hour", "hour")]:
        doc = get_json(cti, path)
        assert isinstance(doc["now"], list) and len(doc["now"]) == 2 and all(isinstance(x, int) for x in doc["now"])
        assert NOW - 3600 <= doc["now"][0] <= now() + 2
        got = {name: sorted(map(tuple, pairs)) for name, pairs in doc["score"].items()}
        want: dict[str, list] = {}
        for block, per in counts(cti.model, period, now()).items():
            for name, n in per.items():
                want.setdefault(name, []).append((block, n))
        assert got == {n: sorted(v) for n, v in want.items()}, path


def test_claim_answers(cti):
    status, headers, body = cti.answers["text"]
    assert headers["content-type"].startswith("text/plain")
    assert headers.get("access-control-allow-origin") == "*"
    assert body.decode().strip() == "The land at 61.0.0.1 was claimed for texty."
    status, headers, body = cti.answers["html"]
    assert headers["content-type"].startswith("text/html")
    assert "<title>The land at 61.0.0.2 was claimed for htmly.</title>" in body.decode()


# ---------------------------------------------------------------------------------------------
# Static files from web.root

def read_root(srv: CompatServer, rel: str) -> bytes:
    with open(os.path.join(srv.root, rel), "rb") as f:
        return f.read()


@pytest.mark.parametrize("path,rel,types", [
    ("/", "index.html", ("text/html",)),
    ("/index.html", "index.html", ("text/html",)),
    ("/users.html", "users.html", ("text/html",)),
    ("/cti-standin.js", "cti-standin.js", ("text/javascript", "application/javascript")),
    ("/cti-standin.css", "cti-standin.css", ("text/css",)),
    ("/pixel.png", "pixel.png", ("image/png",)),
    ("/favicon.svg", "favicon.svg", ("image/svg+xml",)),
    ("/sub/page.txt", "sub/page.txt", ("text/plain",)),
])
def test_static_types_and_etags(cti, path, rel, types):
    status, headers, body = cti.get(path)
    assert status == 200, (path, status, body[:200])
    assert body == read_root(cti, rel)
    assert headers["content-type"].split(";")[0].strip() in types, (path, headers["content-type"])
    assert "content-encoding" not in headers
    etag = headers.get("etag")
    assert etag, f"{path}: no ETag"
    status, headers2, body2 = cti.get(path, {"If-None-Match": etag})
    assert status == 304 and body2 == b"", (path, status)
    assert headers2.get("etag") == etag
    status, _, body3 = cti.get(path, {"If-None-Match": '"not-the-etag"'})
    assert status == 200 and body3 == body


@pytest.mark.parametrize("path,rel", [("/", "index.html"), ("/cti-standin.js", "cti-standin.js")])
def test_static_gzip(cti, path, rel):
    status, headers, body = cti.get(path, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip", (path, headers)
    assert gzip.decompress(body) == read_root(cti, rel)
    status, headers, _ = cti.get(path, {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert status == 304


def test_static_missing_and_directories(cti):
    for path in ("/nope.html", "/nope/", "/sub/nope.txt", "/cti-standin.js.map", "/index.htm"):
        status, _, _ = cti.get(path)
        assert status == 404, (path, status)
    for path in ("/sub", "/sub/", "/sub/.", "/outside/"):
        status, _, body = raw_get(cti, path.encode())
        assert status != 200 and status < 500, (path, status)
        assert b"page.txt" not in body and b"secret" not in body.lower(), (path, body[:300])


def test_builtin_routes_win_over_files(cti):
    for name in SHADOWED:
        assert os.path.exists(os.path.join(cti.root, *name.split("/")))
    checks = {
        "/score": lambda s, b: s == 200 and "score" in json.loads(b),
        "/recent": lambda s, b: s == 200 and "recent" in json.loads(b),
        "/ip": lambda s, b: s == 200 and b == b"127.0.0.1\n",
        "/claim": lambda s, b: s == 400,
        "/api/ip": lambda s, b: s == 200 and json.loads(b)["ip"] == "127.0.0.1",
        "/api/recent": lambda s, b: s == 200 and "claims" in json.loads(b),
        "/api/blocks": lambda s, b: s == 200 and "blocks" in json.loads(b),
        "/api/users": lambda s, b: s == 400,
        "/api/ranks/all": lambda s, b: s == 200 and "rankings" in json.loads(b),
    }
    for path, ok in checks.items():
        status, _, body = cti.get(path)
        assert b"SHADOW" not in body, (path, status, body[:200])
        assert ok(status, body), (path, status, body[:200])


def raw_get(srv: CompatServer, target: bytes) -> tuple[int, dict, bytes]:
    """One request with the target sent byte for byte (no client-side normalization). Status 0:
    the server closed without an answer."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except ConnectionResetError:
        pass
    if not data:
        return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode(errors="replace")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        plain, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            plain, rest = plain + rest[:size], rest[size + 2:]
        body = plain
    return status, headers, body


HOSTILE = [
    b"/../secret.txt",
    b"/../../../../../../../../etc/passwd",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/..%2fsecret.txt",
    b"/..%2Fsecret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    b"/a/../../secret.txt",
    b"/sub/../../secret.txt",
    b"/./../secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e./secret.txt",
    b"/%252e%252e/secret.txt",
    b"/%c0%ae%c0%ae/secret.txt",
    b"/..\\secret.txt",
    b"/..%5csecret.txt",
    b"/%5c..%5csecret.txt",
    b"//etc/passwd",
    b"///etc/passwd",
    b"/etc/passwd",
    b"/../rootx/secret2.txt",
    b"/%2e%2e/rootx/secret2.txt",
    b"/..%2frootx%2fsecret2.txt",
    b"/leak.txt",
    b"/outside/secret.txt",
    b"/outside/rootx/secret2.txt",
    b"/elsewhere/secret2.txt",
    b"/secret.txt%00",
    b"/leak.txt%00.html",
    b"/index.html%00/../../secret.txt",
    b"/%00/../secret.txt",
    b"/leak.txt\x00",
    b"/../secret.txt?x=1",
    b"http://127.0.0.1/../secret.txt",
]


def test_no_file_outside_the_root(cti):
    secret = open(os.path.join(cti.site, "secret.txt"), "rb").read().strip()
    secret2 = open(os.path.join(cti.site, "rootx", "secret2.txt"), "rb").read().strip()
    passwd = open("/etc/passwd", "rb").read()[:40] if os.path.exists("/etc/passwd") else b"root:x:0:0"
    failures = []
    for target in HOSTILE:
        status, _, body = raw_get(cti, target)
        leaked = secret in body or secret2 in body or passwd in body or b"root:x:0:0" in body
        if leaked or status == 200 or status >= 500:
            failures.append(f"GET {target!r} -> {status}{' LEAKED' if leaked else ''}: {body[:60]!r}")
    assert not failures, "\n".join(failures)
    # The server still answers ordinary requests (no crash on any of the above).
    assert cti.get("/cti-standin.css")[0] == 200
