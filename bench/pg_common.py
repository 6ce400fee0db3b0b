"""The benchmarks' PostgreSQL: the tests' throwaway server (tests/pg_server.py), durable by default."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_server import PgServer  # noqa: E402

# What a production server keeps: every commit on disk (the tests' server turns these off).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


@contextmanager
def postgresql(durable: bool = True) -> Iterator[PgServer]:
    """A private server for the benchmark's run, its password in this process's environment
    (so that engine processes started from here log in too); removed at the end."""
    with PgServer(settings=DURABLE if durable else None) as server:
        saved = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())
        try:
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
