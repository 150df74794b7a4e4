"""`ipquest backup` while the game runs, `ipquest restore`, and the words for a damaged database."""
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from harness import Server, binary, wait_until


def address(i: int) -> str:
    """A distinct client per claim, each in its own /24 (no per-network limit is hit)."""
    return f"{20 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.1"


class Storm:
    """Threads that claim fresh addresses for fresh names through the trusted proxy 127.0.0.1,
    recording when each claim was acknowledged (200)."""

    def __init__(self, server: Server, threads: int = 4):
        self.server = server
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.next = 0
        self.acked: list[tuple[int, float]] = []  # (claim number, monotonic time of the 200)
        self.sent_at: dict[int, float] = {}
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        deadline = time.monotonic() + 120
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            with self.lock:
                i = self.next
                self.next += 1
                self.sent_at[i] = time.monotonic()
            try:
                conn.request("GET", f"/claim?name=s{i}", headers={"Accept": "application/json", "X-Forwarded-For": address(i)})
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
                continue
            if r.status == 200:
                with self.lock:
                    self.acked.append((i, time.monotonic()))
            elif r.status != 503:
                self.errors.append(f"{r.status} {body[:200]!r}")
        conn.close()

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


def test_backup_under_a_claim_storm_then_restore_keeps_every_acknowledged_claim(workdir):
    server = Server(workdir, args=["--durability", "normal"]).start()
    backup = os.path.join(workdir, "backup.sqlite")
    storm = Storm(server)
    try:
        storm.start()
        wait_until(lambda: storm.acked_count() >= 300, 60, "300 acknowledged claims")
        began = time.monotonic()
        with storm.lock:
            before = [i for i, at in storm.acked if at < began]
        result = subprocess.run([binary(), "backup", "--database", server.database, backup],
                                capture_output=True, text=True, timeout=120)
        ended = time.monotonic()
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"backed up {server.database} to {backup}: "), result.stdout
        # The game went on during the backup, and after it.
        wait_until(lambda: any(at > ended for _, at in list(storm.acked)), 30, "claims after the backup")
        with storm.lock:
            during = [i for i, at in storm.acked if began <= at <= ended]
            after_sent = [i for i, at in storm.acked if storm.sent_at[i] > ended]
    finally:
        storm.finish()
        server.stop()
    assert not storm.errors, storm.errors[:5]
    assert during, "no claim was acknowledged while the backup ran: it did not overlap the storm"
    assert after_sent

    # Restore into a fresh path and serve it.
    restored = os.path.join(workdir, "restored.sqlite")
    result = subprocess.run([binary(), "restore", "--database", restored, backup], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    again = Server(workdir, database=restored).start()
    try:
        missing = []
        for i in before:
            status, _, body = again.get(f"/api/players/s{i}")
            if status != 200 or json.loads(body)["addresses"] != 1:
                missing.append(i)
        assert not missing, f"{len(missing)} of {len(before)} claims acknowledged before the backup are missing: {missing[:10]}"
        # Consistent, not a mix: claims sent after the backup had finished are not in it.
        present_later = [i for i in after_sent[:200] if again.get(f"/api/players/s{i}")[0] == 200]
        assert not present_later, present_later[:10]
    finally:
        again.stop()


def test_backup_refuses_to_overwrite_and_restore_refuses_a_database_in_use(workdir):
    server = Server(workdir).start()
    try:
        assert server.claim("198.51.100.1", "alice")[0] == 200
        out = os.path.join(workdir, "b.sqlite")
        first = subprocess.run([binary(), "backup", "--database", server.database, out], capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        second = subprocess.run([binary(), "backup", "--database", server.database, out], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "exists" in second.stderr, second.stderr
        forced = subprocess.run([binary(), "backup", "--force", "--database", server.database, out], capture_output=True, text=True, timeout=60)
        assert forced.returncode == 0, forced.stderr
        busy = subprocess.run([binary(), "restore", "--database", server.database, out], capture_output=True, text=True, timeout=60)
        assert busy.returncode == 1, busy.stdout
        assert f"{server.database} is open in process {server.process.pid}" in busy.stderr, busy.stderr
        missing = subprocess.run([binary(), "backup", "--database", os.path.join(workdir, "nope.sqlite"), os.path.join(workdir, "x")],
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and "no database file" in missing.stderr
        assert not os.path.exists(os.path.join(workdir, "nope.sqlite"))  # not created by trying
    finally:
        server.stop()


def damaged_database(workdir: str) -> str:
    """A real game database whose pages after the first (schema) page are overwritten."""
    server = Server(workdir).start()
    try:
        for i in range(50):
            assert server.claim(address(i), f"p{i}")[0] == 200
    finally:
        server.process.kill()  # a 2xx is durable: no need for a clean stop
        server.process.wait(timeout=10)
    db = server.database
    subprocess.run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE)"], check=True, capture_output=True, timeout=30)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    for extra in os.listdir(workdir):  # anything the server keeps beside the file (a board checkpoint)
        path = os.path.join(workdir, extra)
        if extra.startswith(os.path.basename(db) + ".") and os.path.isfile(path):
            os.remove(path)
    size = os.path.getsize(db)
    page = int.from_bytes(open(db, "rb").read(18)[16:18], "big")
    assert size > page, "the database should have more than one page"
    with open(db, "r+b") as f:
        f.seek(page)
        f.write(bytes((i * 7 + 13) & 0xFF for i in range(size - page)))
    return db


def assert_advice(stderr: str, db: str):
    assert f"the SQLite database {db} is damaged" in stderr, stderr
    assert "SQLite error" in stderr
    assert "restore the last backup" in stderr and f"ipquest restore --database {db}" in stderr
    assert f"sqlite3 {db} .recover" in stderr


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_a_damaged_database_at_start_says_which_file_what_and_how_to_recover(workdir, damage):
    if damage == "pages":
        db = damaged_database(workdir)
    else:
        db = os.path.join(workdir, "game.sqlite")
        with open(db, "wb") as f:
            f.write(b"this is not an SQLite file, just some bytes " * 200)
    result = subprocess.run([binary(), "serve", "--port", "0", "--database", db], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert_advice(result.stderr, db)
    # The backup command names the same trouble instead of copying a damaged file.
    out = os.path.join(workdir, "copy.sqlite")
    copy = subprocess.run([binary(), "backup", "--database", db, out], capture_output=True, text=True, timeout=60)
    assert copy.returncode == 1
    assert f"the SQLite database {db} is damaged" in copy.stderr or "integrity check" in copy.stderr, copy.stderr
    assert not os.path.exists(out)


def test_the_advised_recovery_works(workdir):
    """Following the message's second way: .recover into a new file, then serve that file."""
    db = damaged_database(workdir)
    recovered = db[:-len(".sqlite")] + ".recovered.sqlite"
    dump = subprocess.run(["sqlite3", db, ".recover"], capture_output=True, timeout=60)
    load = subprocess.run(["sqlite3", recovered], input=dump.stdout, capture_output=True, timeout=60)
    assert load.returncode == 0, load.stderr
    check = subprocess.run(["sqlite3", recovered, "PRAGMA integrity_check"], capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "ok"
    server = Server(workdir, database=recovered).start()
    server.stop()
