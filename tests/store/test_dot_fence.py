"""The dot fence: a stop returns only after dots allowed before its commit are written."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time

import pytest
from store_backend import ON_POSTGRESQL
from storehelp import python_child

from mailconsole.store import Actor, accounts
from mailconsole.store.dot_fence import DotFence, wait_for_allowed_dots

OPERATOR = Actor("operator")
# The file lock beside an SQLite store; PostgreSQL's fence is tests/engine/test_pg_fence.py.
pytestmark = pytest.mark.skipif(ON_POSTGRESQL, reason="the dot fence of an SQLite store (a file lock)")


def test_stop_waits_for_a_dot_in_progress(store):
    fence = DotFence(store)
    fence.hold()  # an engine worker between its gate read and its dot
    done = threading.Event()
    thread = threading.Thread(target=lambda: (accounts.stop(store, OPERATOR), done.set()))
    thread.start()
    try:
        # The stop commits at once but must not return while the dot may still be written.
        deadline = time.monotonic() + 10
        while not accounts.state(store).stopped and time.monotonic() < deadline:
            time.sleep(0.01)
        assert accounts.state(store).stopped
        time.sleep(0.2)
        assert not done.is_set()
    finally:
        fence.release()
    thread.join(10)
    assert done.is_set()
    fence.close()


def test_holders_are_counted_and_the_wait_gives_up(store):
    fence = DotFence(store)
    fence.hold()
    fence.hold()
    fence.release()
    assert wait_for_allowed_dots(store, timeout=0.1) is False  # one holder left
    fence.release()
    assert wait_for_allowed_dots(store, timeout=5) is True
    fence.close()


def test_a_killed_engine_never_blocks_a_stop(store, db_path):
    holder = textwrap.dedent(f"""
        import sys, time
        from mailconsole.store import Store
        from mailconsole.store.dot_fence import DotFence
        DotFence(Store({str(db_path)!r})).hold()
        print("holding", flush=True)
        time.sleep(60)
    """)
    with python_child(holder) as proc:
        assert proc.stdout.readline().strip() == "holding"
        assert wait_for_allowed_dots(store, timeout=0.1) is False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_for_allowed_dots(store, timeout=5) is True


def test_the_fence_file_is_private(store):
    DotFence(store).close()
    assert os.stat(store.backend.fence_path).st_mode & 0o777 == 0o600
