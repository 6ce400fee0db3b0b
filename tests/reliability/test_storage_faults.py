"""Storage faults while an engine sends: the store locked, made read-only, or its disk full.

Each scenario runs one `mailconsole serve` at a modest rate, injects the fault
mid-send, and requires that the engine says why (a warning in its log naming the
cause), that nothing is recorded meanwhile (nothing can be), and that once the
fault clears it finishes the queue with promises 2-4 intact. How each fault is made:

- locked: another process holds SQLite's write lock (BEGIN IMMEDIATE) for longer
  than the engine's busy timeout (MAILCONSOLE_BUSY_TIMEOUT_MS=300);
- read-only: `chattr +i` on the database and its -wal/-shm files. As root, file
  modes do not stop writes, but the immutable flag does, even through open
  descriptors; the kernel answers EPERM and SQLite reports an I/O error;
- disk full: the store lives on a small tmpfs; a balloon file takes the free
  space, the WAL is truncated so the next write needs new blocks, and the
  balloon is removed to clear the fault.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.conftest import add_mailing, wait
from mailconsole.store import Store
from mailconsole.store.engines import live_engines
from mailconsole.store.mailings import get_mailing

from . import accounting
from .procs import EngineProcess

pytestmark = pytest.mark.slow  # real processes, servers and seconds of sending

N = 300


def run_with_fault(store: Store, tmp_path: Path, port: int, config: Path, handler, db: Path,  # type: ignore[no-untyped-def]
                   inject: Callable[[], None], clear: Callable[[], None], says: tuple[str, ...]) -> str:
    """Send N messages, inject the fault mid-send, clear it; returns the engine's log."""
    mid = add_mailing(store, tmp_path, N)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    engine = EngineProcess("engine", db, port, config, logs, "--rate", "60",
                           env={"MAILCONSOLE_BUSY_TIMEOUT_MS": "300"})
    engine.start()
    try:
        wait(lambda: get_mailing(store, mid).sent >= 30, 60)
        try:
            inject()
            wait(lambda: any(word in engine.log().lower() for word in says), 60)
            frozen = get_mailing(store, mid)
            time.sleep(1.0)
            assert get_mailing(store, mid).sent == frozen.sent  # nothing can be recorded meanwhile
            assert engine.proc.poll() is None, engine.log()  # and the engine is still there
        finally:
            clear()
        wait(lambda: _done(store, mid), 120)
        # Once writes work again the heartbeat no longer reports the fault.
        wait(lambda: all(e.note is None for e in live_engines(store)), 30)
        assert "store writable again" in engine.log()
    finally:
        code = engine.stop()
    assert code == 0, engine.log()
    report = accounting.check(store, accounting.deliveries(m.data for m in handler.messages))
    assert report.states["sent"] == N
    print(f"\nrecovered: {report.recovered}, duplicates: {report.duplicates}\n--- engine log ---\n{engine.log()[-1500:]}")
    return engine.log()


def _done(store: Store, mid: int) -> bool:
    m = get_mailing(store, mid)
    return m.queued == 0 and m.in_flight == 0


def test_store_locked_longer_than_the_busy_timeout(store, tmp_path, smtpd_factory, engine_toml):
    ctl, handler = smtpd_factory()
    db = tmp_path / "store.db"
    holder: list[subprocess.Popen] = []
    hold = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(float(sys.argv[2])); c.execute('ROLLBACK')\n")

    def inject() -> None:
        p = subprocess.Popen([sys.executable, "-c", hold, str(db), "4"], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        holder.append(p)

    def clear() -> None:
        holder[0].wait(30)

    run_with_fault(store, tmp_path, ctl.port, engine_toml(lease_seconds=10.0), handler, db, inject, clear, says=("locked",))


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def test_store_made_read_only_while_sending(store, tmp_path, smtpd_factory, engine_toml):
    db = tmp_path / "store.db"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    try:
        _chattr("+i", db)
        _chattr("-i", db)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not supported here")
    ctl, handler = smtpd_factory()
    try:
        run_with_fault(store, tmp_path, ctl.port, engine_toml(lease_seconds=10.0), handler, db,
                       lambda: _chattr("+i", *files), lambda: _chattr("-i", *files),
                       says=("read-only", "readonly", "disk i/o error"))
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 32 MB tmpfs (needs mount rights; skipped otherwise), unmounted at the end."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


class Balloon:
    """Takes every free byte of a file system, and gives them back."""

    def __init__(self, fs: Path, db: Path) -> None:
        self.path, self.db = fs / "balloon", db

    def fill(self) -> None:
        try:
            with self.path.open("ab", buffering=0) as f:
                while True:
                    f.write(b"\0" * (1 << 16))
        except OSError:
            pass  # full: the point

    def inflate(self) -> None:
        # The WAL is reused in place once grown: truncate it so the next write needs new space.
        for _ in range(5):
            self.fill()
            c = sqlite3.connect(str(self.db), timeout=5)
            try:
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                pass  # full already
            finally:
                c.close()
        self.fill()

    def deflate(self) -> None:
        self.path.unlink(missing_ok=True)


DISK_FULL = ("disk full", "database or disk is full")


def test_disk_full_while_sending(tmp_path, small_fs, smtpd_factory, engine_toml):
    db = small_fs / "store.db"
    store = Store(str(db))
    ctl, handler = smtpd_factory()
    balloon = Balloon(small_fs, db)
    try:
        run_with_fault(store, tmp_path, ctl.port, engine_toml(lease_seconds=10.0), handler, db,
                       balloon.inflate, balloon.deflate, says=DISK_FULL)
    finally:
        store.close()


def test_shutdown_on_a_full_disk_ends_and_nothing_is_lost(tmp_path, small_fs, smtpd_factory, engine_toml):
    """SIGTERM while no write can succeed: the engine must still exit (it used to retry
    recording its results forever); what it could not record comes back by lease expiry."""
    db = small_fs / "store.db"
    store = Store(str(db))
    ctl, handler = smtpd_factory()
    balloon = Balloon(small_fs, db)
    mid = add_mailing(store, tmp_path, N)
    logs = tmp_path / "logs"
    logs.mkdir()
    config = engine_toml(lease_seconds=3.0, shutdown_grace=1.0)
    first = EngineProcess("first", db, ctl.port, config, logs, "--rate", "60")
    second = EngineProcess("second", db, ctl.port, config, logs)
    try:
        first.start()
        wait(lambda: get_mailing(store, mid).sent >= 30, 60)
        try:
            balloon.inflate()
            wait(lambda: any(w in first.log().lower() for w in DISK_FULL), 60)
            wait(lambda: get_mailing(store, mid).in_flight > 0 and len(handler.messages) > get_mailing(store, mid).sent, 30)
            assert first.stop() == 0, first.log()  # within the test's 60 s wait, not never
        finally:
            balloon.deflate()
        second.start()
        wait(lambda: _done(store, mid), 120)
        assert second.stop() == 0
        report = accounting.check(store, accounting.deliveries(m.data for m in handler.messages))
        assert report.states["sent"] == N and report.recovered > 0
        assert "giving up recording" in first.log()
        print(f"\nrecovered: {report.recovered}, duplicates at the server: {report.duplicates}")
    finally:
        first.stop()
        second.stop()
        store.close()
