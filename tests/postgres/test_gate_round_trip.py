"""The gate's read on PostgreSQL is one statement and one round trip, as libpq itself sees it.

The engine runs this read before every end-of-data dot (store/gate_io.py). Three
statements in a transaction cost ~4 ms under load against ~1 ms for one; the
trace below is the client library's own record of every message on the wire, so
a BEGIN, a ROLLBACK or a second query slipped in by a change would show.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import pq

from mailconsole.store import Store
from mailconsole.store.gate_io import ControlReader


def _frontend_messages(trace: str) -> list[str]:
    """The message types the client sent ("Query", "Parse", ...), in order."""
    kinds = []
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == "F":
            kinds.append(fields[2].split(" ")[0])
    return kinds


def test_a_gate_read_is_one_query_and_nothing_around_it(pg_store_url: str, tmp_path: Path) -> None:
    store = Store(pg_store_url)
    reader = ControlReader(store)
    try:
        reader.read()  # the connection is set up; from here on each read is what the gate pays
        raw = reader._raw.get()
        out = tmp_path / "libpq.trace"
        with out.open("w") as f:
            raw.pgconn.trace(f.fileno())
            raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            try:
                for _ in range(3):
                    reader.read()
            finally:
                raw.pgconn.untrace()
        sent = _frontend_messages(out.read_text())
        assert sent == ["Query"] * 3, sent  # one simple query each: no BEGIN, no ROLLBACK, no second read
        assert raw.autocommit
    finally:
        reader.close()
        store.close()
