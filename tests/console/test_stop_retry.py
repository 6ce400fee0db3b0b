"""The screen never claims a stop that is not saved, and the stop is retried until it is.

A real second process holds SQLite's write lock (BEGIN IMMEDIATE) on the same
file while the operator presses the stop key; a real immutable file (chattr +i)
makes the commit fail in a way that is not a busy store.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lockholder import lock_held, release

from store_backend import ON_POSTGRESQL, sqlite_only, store_at
from mailconsole.console.app import MailConsole
from mailconsole.console.header import ConsoleHeader
from mailconsole.console.stopping import StopProgress, StopRequest
from mailconsole.store import Store, StoreBusy, StoreError, accounts, stop_intent
from mailconsole.store.audit import entries

from .builder import FIXED, OPERATOR

@pytest.fixture
def db(make_store: Callable[..., Store], tmp_path: Path) -> Path:
    make_store().close()
    return tmp_path / "store.db"


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the store's write lock until `release(holder)`."""
    if ON_POSTGRESQL:
        pytest.skip("holds the SQLite file's write lock from another process (tests/lockholder.py)")
    with lock_held(db) as proc:
        yield proc


def _app(db: Path) -> MailConsole:
    # A short busy timeout: each attempt gives up on the lock after 0.3 s, so the
    # test sees several attempts, and the "store busy" state, within a second.
    store = Store(store_at(db), busy_timeout_ms=300, clock=lambda: FIXED)
    return MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None)


def banner(app: MailConsole) -> tuple[str, set[str]]:
    widget = app.screen.query_one(ConsoleHeader).query_one("#banner")
    return str(widget.render()), set(widget.classes)


async def _watch(app: MailConsole, seconds: float) -> list[tuple[str, set[str]]]:
    """What the banner said, every 20 ms for `seconds`."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(banner(app))
        await asyncio.sleep(0.02)
    return seen


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_a_held_lock_shows_stop_requested_until_the_stop_is_saved(db: Path, holder: subprocess.Popen) -> None:
    app = _app(db)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("f2")
            during = await _watch(app, 1.5)
            # Never STOPPED while nothing is saved; RUNNING neither: the request is on screen.
            assert all("-stopped" not in classes and "STOPPED" not in text for text, classes in during), during
            assert all(text.startswith("▲ STOP REQUESTED — not yet applied") for text, _ in during), during[0]
            text, classes = during[-1]
            assert "(store busy: " in text and text.endswith("retrying") and "-requested" in classes
            assert app.stop_progress is not None and app.stop_progress.attempts >= 2  # retried by itself
            assert not accounts.state(app.store).stopped
            # Meanwhile the console has posted the stop intent, as `mailconsole stop` does:
            # engines on this host hold the account before the store has the stop.
            acc = accounts.state(app.store)
            assert stop_intent.pending(app.store, acc.id, acc.generation) is not None
            # The Settings tab says the same, in more words.
            assert "NOT YET APPLIED" in str(app.query_one("#state-word").render())
            assert "retried by itself" in str(app.query_one("#state-detail").render())

            release(holder)
            # No key pressed: the next attempt gets the lock and the screen says STOPPED.
            await _until(lambda: "-stopped" in banner(app)[1], 5, "STOPPED after the lock was released")
            assert banner(app)[0].startswith("■ STOPPED")
            assert accounts.state(app.store).stopped
            assert stop_intent.read_all(app.store) == []  # the commit spent the intent
            await _until(lambda: app.stop_request is not None and app.stop_request.fenced.is_set(), 5,
                         "the dot fence after the commit")
            stops = [e for e in entries(app.store, limit=5) if e.action == "stop"]
            assert stops and stops[0].details.get("reason") == "stop key in the console"
            assert not app._notifications  # nothing was shown as a toast that would vanish

    asyncio.run(main())


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@sqlite_only("an immutable SQLite file (chattr +i) makes its commits fail")
def test_a_failing_commit_stays_on_screen_until_it_succeeds(db: Path) -> None:
    """Not a busy store (an immutable file, as a read-only file system): shown until fixed, retried."""
    # Not the -shm file: SQLite maps it into memory, and a write refused there is SIGBUS.
    files = [db, Path(f"{db}-wal")]
    try:
        _chattr("+i", db)
        _chattr("-i", db)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not supported here")
    app = _app(db)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            _chattr("+i", *[f for f in files if f.exists()])
            try:
                await pilot.press("f2")
                await _until(lambda: app.stop_progress is not None and app.stop_progress.phase == "failed", 5,
                             "the failure on screen")
                # It stays: seconds later, still on the banner (not a toast), and retried.
                during = await _watch(app, 2.5)
                assert all("-stopped" not in classes for _, classes in during)
                assert all("-failing" in classes and "not yet applied" in text for text, classes in during), during[0]
                assert "disk I/O error" in during[-1][0] or "read-only" in during[-1][0]
                assert app.stop_progress is not None and app.stop_progress.attempts >= 2
                assert not accounts.state(app.store).stopped
            finally:
                _chattr("-i", *files)
            await _until(lambda: "-stopped" in banner(app)[1], 5, "STOPPED once the file is writable again")
            assert accounts.state(app.store).stopped
            assert "-failing" not in banner(app)[1]

    try:
        asyncio.run(main())
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)


def test_retries_have_no_limit() -> None:
    """Two hundred busy answers, then the commit: applied, with every state reported in order."""
    answers = iter([StoreBusy("locked", holder=f"pid {n}") for n in range(200)] + [None])
    seen: list[StopProgress] = []

    def commit() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer

    request = StopRequest(commit, after_commit=lambda: None, fence=lambda: None, report=seen.append, busy_pause=0)
    request.start()
    assert request.fenced.wait(10)
    assert [p.phase for p in seen] == ["busy"] * 200 + ["applied"]
    assert seen[-2].why_not() == "store busy: pid 199" and seen[-1].attempts == 201


def test_cancel_ends_the_retries() -> None:
    def commit() -> None:
        raise StoreError("disk I/O error")

    request = StopRequest(commit, after_commit=lambda: None, fence=lambda: None, report=lambda p: None,
                          error_pause=0.01)
    request.start()
    assert request.first_attempt.wait(5)
    request.cancel()
    request._thread.join(5)
    assert not request.is_alive() and not request.applied.is_set()


def test_an_unexpected_error_is_retried_too() -> None:
    """Not only store errors: a stop whose attempt raised anything is still tried again."""
    answers = iter([RuntimeError("driver bug"), StoreError("disk I/O error"), None])
    seen: list[StopProgress] = []

    def commit() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer

    request = StopRequest(commit, after_commit=lambda: None, fence=lambda: None, report=seen.append,
                          error_pause=0.01)
    request.start()
    assert request.fenced.wait(10)
    assert [(p.phase, p.detail) for p in seen] == [
        ("failed", "RuntimeError: driver bug"), ("failed", "disk I/O error"), ("applied", "")]


def test_a_screen_that_fails_to_draw_a_state_does_not_end_the_retries() -> None:
    """The report, the nudge and `done` draw or poke the console; any of them raising
    (a widget not mounted yet did) must leave the stop being tried until saved."""
    answers = iter([StoreBusy("locked"), StoreBusy("locked"), None])
    done: list[bool] = []

    def commit() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer

    def report(progress: StopProgress) -> None:
        raise ValueError("More values provided than there are columns.")

    def after_commit() -> None:
        raise RuntimeError("no engine to nudge")

    def finished() -> None:
        done.append(True)
        raise RuntimeError("the app is closing")

    request = StopRequest(commit, after_commit=after_commit, fence=lambda: None, report=report,
                          done=finished, busy_pause=0)
    request.start()
    assert request.fenced.wait(10)
    assert request.applied.is_set() and request.progress.phase == "applied" and request.progress.attempts == 3
    request._thread.join(5)
    assert done == [True]


def test_a_pause_on_a_busy_store_says_it_waits_and_is_applied_after(db: Path, holder: subprocess.Popen) -> None:
    """A pause, like the stop, is retried until applied; the operator is told it is on its way."""
    from mailconsole.console.analytics_tab import MailingsTable
    from mailconsole.store import mailings

    sale = 3
    app = _app(db)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("2")
            table = app.query_one(MailingsTable)
            table.move_cursor(row=table.get_row_index(str(sale)))
            await pilot.pause()
            await pilot.press("p")
            await _until(lambda: any("waits for the store" in n.message for n in app._notifications), 5,
                         "the toast saying the pause waits")
            assert mailings.get_mailing(app.store, sale).status != "paused"
            release(holder)
            await _until(lambda: mailings.get_mailing(app.store, sale).status == "paused", 5,
                         "the pause applied once the lock was free")

    asyncio.run(main())


def test_quitting_before_the_stop_is_saved_hands_it_to_a_stop_process(db: Path, holder: subprocess.Popen) -> None:
    """The console closes while the store is still busy: a `mailconsole stop` of its own takes the stop over."""
    import os
    import signal

    app = _app(db)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("f2")
            await _until(lambda: app.stop_progress is not None and app.stop_progress.phase == "busy", 5,
                         "the busy store")
            await pilot.press("q")

    asyncio.run(main())
    pid = app.stop_handed_over
    assert pid is not None, "the unsaved stop was dropped when the console closed"
    try:
        assert not accounts.state(Store(store_at(db))).stopped
        release(holder)
        deadline = time.monotonic() + 20
        while not accounts.state(Store(store_at(db))).stopped:
            assert time.monotonic() < deadline, "the handed-over stop was never applied"
            time.sleep(0.05)
        stops = [e for e in entries(Store(store_at(db)), limit=5) if e.action == "stop"]
        assert stops and stops[0].details.get("reason") == "stop key in the console"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
