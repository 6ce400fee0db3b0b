"""Opening the console: an empty store against one with a million queued messages.

The console reads only maintained counters, so the two should open within a few
hundred milliseconds of each other. Measured: from creating the app to its first
screen with data (headless, 120x36), median of several openings of each store.

Run:  .venv/bin/python bench/console_open.py [--queued 1000000] [--runs 5] [--postgresql]

--postgresql: both stores are databases on a private PostgreSQL server (bench/pg_common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import queue_mailing

from mailconsole.console.app import MailConsole
from mailconsole.store import Actor, Store

ACTOR = Actor("bench")


def fill(store: Store, directory: Path, queued: int) -> None:
    queue_mailing(store, directory, queued, name="A million", text_body="Hi\n")


def open_once(path: Path | str) -> float:
    async def main() -> float:
        start = time.perf_counter()
        store = Store(str(path))
        app = MailConsole(store, actor=ACTOR, poll_interval=None)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            assert app.snapshot is not None
            elapsed = time.perf_counter() - start
        store.close()
        return elapsed

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgresql", action="store_true", help="stores on a private PostgreSQL server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        empty: Path | str
        full: Path | str
        if args.postgresql:
            from pg_common import postgresql

            server = stack.enter_context(postgresql())
            empty, full = server.create_database("empty"), server.create_database("full")
        else:
            empty, full = Path(tmp) / "empty.db", Path(tmp) / "full.db"
        Store(str(empty)).close()
        t = time.perf_counter()
        store = Store(str(full))
        fill(store, Path(tmp), args.queued)
        store.close()
        print(f"store with {args.queued:,} queued built in {time.perf_counter() - t:.1f} s")
        open_once(empty)  # warm imports and the page cache alike for both
        results = {}
        for name, path in (("empty", empty), (f"{args.queued:,} queued", full)):
            times = [open_once(path) for _ in range(args.runs)]
            results[name] = statistics.median(times)
            print(f"open {name}: median {results[name] * 1000:.0f} ms (runs: "
                  + ", ".join(f"{x * 1000:.0f}" for x in times) + ")")
    values = list(results.values())
    print(f"difference: {(values[1] - values[0]) * 1000:+.0f} ms (target: a few hundred ms at most)")
    return 0 if values[1] - values[0] < 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
