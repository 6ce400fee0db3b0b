"""Another process holding the store's write lock, as a long write would.

One helper for every test that needs a real second writer: the child takes
SQLite's write lock with BEGIN IMMEDIATE, says "holding", and keeps it for
`seconds` (until released or killed if None). It runs as a script file so that
its command line is short and recognisable: the lock holder names it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    if sys.argv[2] == "stdin":
        sys.stdin.readline()  # until the test says so
    else:
        time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
    print("released", flush=True)
""")


@contextmanager
def lock_held(db: str | Path, seconds: float | None = None, *, name: str = "long_writer.py") -> Iterator[subprocess.Popen]:
    """A child holding the write lock of `db` for `seconds` (None: until `release(proc)`).

    Returns once the lock is held; the child is killed on the way out if still running.
    """
    script = Path(db).parent / name
    script.write_text(HOLDER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), "stdin" if seconds is None else str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def release(proc: subprocess.Popen) -> None:
    """Let a child started with seconds=None roll back; returns once the lock is free."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "released"
