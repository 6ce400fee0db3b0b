"""The stop intent: engines' reads treat an account with a live intent as stopped; spent ones are ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from store_backend import ON_POSTGRESQL
from storehelp import ALICE

from mailconsole.store import accounts, queue, stop_intent
from mailconsole.store.gate_io import ControlReader

# Intents live in a directory beside a store file: a PostgreSQL store has none.
pytestmark = pytest.mark.skipif(ON_POSTGRESQL, reason="stop intents are beside an SQLite store's file")


def post(store, generation: int | None = None, *, pid: int | None = None):
    acc = accounts.state(store)
    intent = stop_intent.write(store, acc.id, acc.name, acc.generation + 1 if generation is None else generation,
                               ALICE, store.now())
    if pid is not None:  # as if written by another process
        with open(intent.path) as f:
            d = json.load(f)
        d["pid"] = pid
        with open(intent.path, "w") as f:
            json.dump(d, f)
    return intent


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_gate_read_counts_an_intent_as_stopped_but_keeps_the_generation(store, make_mailing):
    mid = make_mailing(3)
    reader = ControlReader(store)
    try:
        acc = accounts.state(store)
        assert reader.read().may_send(mid)
        post(store)
        control = reader.read()
        assert not control.may_send(mid)
        assert control.generations[acc.id] == acc.generation  # nothing to acknowledge yet
        # Spent once the store has the generation it names: ignored.
        accounts.commit_stop(store, ALICE)
        accounts.resume(store, ALICE)
        assert reader.read().may_send(mid)
    finally:
        reader.close()


def test_an_unreadable_intent_holds_its_account(store, make_mailing):
    mid = make_mailing(1)
    intent = post(store)
    with open(intent.path, "w") as f:
        f.write("{not json")
    reader = ControlReader(store)
    try:
        assert not reader.read().may_send(mid)
    finally:
        reader.close()


def test_no_claim_while_an_intent_holds_the_account(store, make_mailing):
    make_mailing(5)
    post(store)
    assert queue.claim(store, "engine-1", 10, 60) == []
    stop_intent.remove(store, accounts.state(store).id)
    assert len(queue.claim(store, "engine-1", 10, 60)) == 5


def test_the_intent_file_is_private_and_atomic(store):
    intent = post(store)
    assert os.stat(intent.path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(intent.path)).st_mode & 0o777 == 0o700
    assert [n for n in os.listdir(os.path.dirname(intent.path)) if n.startswith(".tmp-")] == []
    (read,) = stop_intent.read_all(store)
    assert (read.account, read.generation, read.pid, read.actor) == ("default", 1, os.getpid(), "alice")


def test_a_stop_that_gets_the_lock_at_once_posts_no_intent(store):
    posted: list[object] = []
    accounts.stop(store, ALICE, on_intent=posted.append)
    assert posted == [] and stop_intent.read_all(store) == []


def test_removal_keeps_a_newer_intent(store):
    post(store, generation=5)
    assert stop_intent.remove(store, accounts.state(store).id, up_to_generation=4) is False
    assert len(stop_intent.read_all(store)) == 1
    assert stop_intent.remove(store, accounts.state(store).id, up_to_generation=5) is True


def test_a_stale_intent_holds_until_resume_clears_it(store, make_mailing):
    mid = make_mailing(2)
    post(store, pid=dead_pid())
    intent = stop_intent.pending(store, accounts.state(store).id, accounts.state(store).generation)
    assert intent is not None and not intent.writer_alive()
    assert accounts.resume_preview(store).intent == intent
    plan = accounts.resume(store, ALICE)
    assert not plan.stopped and plan.intent == intent
    assert stop_intent.read_all(store) == []
    assert len(queue.claim(store, "engine-1", 10, 60)) == 2
    assert mid


def test_resume_refuses_to_clear_the_intent_of_a_stop_still_waiting(store):
    import pytest

    from mailconsole.store.errors import Refused

    post(store)  # written by this process: alive, still applying it
    with pytest.raises(Refused, match="waiting for the store"):
        accounts.resume(store, ALICE)
    assert len(stop_intent.read_all(store)) == 1


def test_a_stale_intent_is_spent_by_a_stop(store):
    post(store, pid=dead_pid())
    accounts.stop(store, ALICE)
    acc = accounts.state(store)
    assert stop_intent.pending(store, acc.id, acc.generation) is None
    assert stop_intent.read_all(store) == []  # and the spent file is gone


def test_a_stop_that_cannot_post_its_intent_still_waits_and_applies(store, db_path):
    """A full disk or a broken directory costs the early honour, never the stop."""
    import sqlite3
    import threading
    import time

    with open(str(db_path) + "-stop-intents", "w") as f:  # a file where the directory should be
        f.write("in the way")
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        release.wait(5)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(5)
    posted: list[object] = []
    threading.Timer(0.3, release.set).start()
    t0 = time.monotonic()
    state = accounts.stop(store, ALICE, on_intent=posted.append)
    holder.join()
    assert state.stopped and accounts.state(store).stopped
    assert posted == [] and time.monotonic() - t0 >= 0.25
