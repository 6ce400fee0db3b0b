"""The final-dot gate's read of the stop state, per backend: what each dot waits for.

Times `ControlReader.read()` (store/gate_io.py) on a store with a few accounts and
mailings, on SQLite and on a private PostgreSQL server (over loopback TCP, durable
settings), best of --rounds medians of --reads reads. To compare two trees, run it
with each one's package first on the path, one after the other:

    python bench/gate_read_cost.py
    PYTHONPATH=/path/to/tree-before/src python bench/gate_read_cost.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import make_store
from pg_common import postgresql

from mailconsole.store import Store
from mailconsole.store.gate_io import ControlReader


def measure(store: Store, reads: int, rounds: int) -> float:
    """The best of `rounds` medians, in µs a read."""
    reader = ControlReader(store)
    try:
        medians = []
        for _ in range(rounds):
            times = []
            for _ in range(reads):
                t0 = time.perf_counter()
                reader.read()
                times.append(time.perf_counter() - t0)
            medians.append(statistics.median(times))
        return min(medians) * 1e6
    finally:
        reader.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mc-gate-read-"))
    store, _ = make_store(work / "s.db", 100, work)
    sqlite_us = measure(store, args.reads, args.rounds)
    store.close()
    with postgresql() as server:
        url = server.create_database()
        store, _ = make_store(url, 100, work)  # type: ignore[arg-type]  (a URL or a path)
        pg_us = measure(store, args.reads, args.rounds)
        store.close()
    print(json.dumps({"bench": "gate_read_cost", "sqlite_us": round(sqlite_us, 1), "postgresql_us": round(pg_us, 1)}))


if __name__ == "__main__":
    main()
