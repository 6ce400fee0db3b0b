"""A busy store never refuses a stop, pause or delete: they wait, name the writer, and are applied."""

from __future__ import annotations

import os
import threading
import time

import pytest
from lockholder import lock_held
from sqlalchemy import select
from storehelp import ALICE

from mailconsole.store import accounts, mailings
from mailconsole.store.backends import sqlite_lock_holder as lock_holder
from mailconsole.store.errors import StoreBusy
from mailconsole.store.schema import mailings as mailings_table

def hold_lock(db_path, seconds: float | None = None):  # type: ignore[no-untyped-def]
    """A process holding the lock, with a recognisable command line (its script's name)."""
    return lock_held(db_path, seconds, name="template_set_holder.py")


def test_the_lock_holder_is_named_by_pid_and_command(store, db_path):
    with hold_lock(db_path) as proc:
        assert lock_holder.holder_pid(db_path) == proc.pid
        described = lock_holder.describe(db_path)
        assert described is not None and described.startswith(f"pid {proc.pid} (")
        assert "template_set_holder.py" in described
    # Freed: nobody is named.
    deadline = time.monotonic() + 5
    while lock_holder.holder_pid(db_path) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lock_holder.holder_pid(db_path) is None


def test_a_command_line_is_escaped_and_bounded(tmp_path):
    proc = tmp_path / "4242"
    proc.mkdir()
    (proc / "cmdline").write_bytes(b"/usr/bin/python3\0/venv/bin/mailconsole\0stop\0--reason\0\x1b[2J\xe2\x80\xae" + b"x" * 500 + b"\0")
    text = lock_holder.command_of(4242, proc=str(tmp_path))
    assert text.startswith("mailconsole stop --reason \\x1b[2J\\u202e")
    assert len(text) <= lock_holder.MAX_COMMAND and text.endswith("…")
    assert lock_holder.command_of(999_999_999) is None


def test_a_single_try_fails_with_the_holder_named(store, db_path):
    with hold_lock(db_path) as proc:
        with pytest.raises(StoreBusy) as busy:
            accounts.commit_stop(store, ALICE, patience=0.05)
    assert busy.value.holder is not None and busy.value.holder.startswith(f"pid {proc.pid} (")
    assert f"pid {proc.pid}" in str(busy.value) and "\n" not in str(busy.value)


@pytest.mark.parametrize("action", ["stop", "pause", "delete"])
def test_stop_pause_and_delete_wait_until_applied(store, db_path, make_mailing, action):
    """Held 2 s, much longer than one try: the action waits, reports, and is applied."""
    mid = make_mailing(3)
    waits: list[tuple[StoreBusy, float]] = []
    run = {
        "stop": lambda: accounts.stop(store, ALICE, on_wait=lambda b, s: waits.append((b, s))),
        "pause": lambda: mailings.pause(store, ALICE, mid, on_wait=lambda b, s: waits.append((b, s))),
        "delete": lambda: mailings.delete_mailing(store, ALICE, mid, on_wait=lambda b, s: waits.append((b, s))),
    }[action]
    with hold_lock(db_path, 2) as proc:
        t0 = time.monotonic()
        run()
        waited = time.monotonic() - t0
        assert proc.stdout.readline().strip() == "released"
    assert waited > 1.5
    assert waits and all(f"pid {proc.pid}" in (b.holder or "") for b, _ in waits[:-1])
    assert waits[-1][1] > 1.0  # the seconds waited so far
    if action == "stop":
        assert accounts.state(store).stopped
    else:
        with store.read() as conn:
            status = conn.execute(select(mailings_table.c.status).where(mailings_table.c.id == mid)).scalar_one()
        assert status == {"pause": "paused", "delete": "deleted"}[action]


def test_giving_up_from_on_wait_leaves_nothing_applied(store, db_path):
    def give_up(busy: StoreBusy, waited: float) -> None:
        raise KeyboardInterrupt

    with hold_lock(db_path):
        with pytest.raises(KeyboardInterrupt):
            accounts.stop(store, ALICE, on_wait=give_up)
    assert not accounts.state(store).stopped


def test_another_error_is_not_retried(store):
    from mailconsole.store.errors import NotFound

    def retried(error: StoreBusy, waited: float) -> None:  # a retry reports itself here first
        raise AssertionError(f"retried after {error!r}")

    with pytest.raises(NotFound):
        mailings.pause(store, ALICE, 12345, on_wait=retried)


def test_a_thread_in_this_process_is_named_as_this_process(store, db_path):
    import sqlite3

    ready, done = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        done.wait(5)
        conn.execute("ROLLBACK")
        conn.close()

    t = threading.Thread(target=hold)
    t.start()
    try:
        ready.wait(5)
        assert lock_holder.describe(db_path) == f"pid {os.getpid()} (this process)"
    finally:
        done.set()
        t.join()
