"""PostgreSQL throughput: `null:` sending by 1, 2 and 4 engine processes, against one SQLite engine.

All in one run, on one machine: first one engine on a SQLite store (the baseline),
then a private PostgreSQL server (tests/pg_server.py; durable settings unless
--fast) with a fresh database per step and K engine processes on it. Each step
sends one mailing of N recipients (two merge fields, ~2 KB body, as
bench/throughput.py). Per step it prints one JSON line: messages/s after the
engines' start-up, per engine, the ratio to the SQLite engine, and what the
server did meanwhile (transactions committed per second, connections), which is
what bounds the rate: every claim, record, gate read and heartbeat is a round
trip to the one server. The load average goes with every line (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import make_store, sent_timings, start_engines, stop_engines

from mailconsole.store import mailings
from mailconsole.store import Actor
from mailconsole.store.engines import live_engines

BENCH = Actor("bench")
from pg_common import PgServer, postgresql


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def server_counters(server: PgServer, dbname: str) -> tuple[int, int, int]:
    """(transactions committed in the database so far, connections to it now, deadlocks
    the server broke so far: each one stalled two writers for its deadlock_timeout)."""
    with server.connect() as conn:
        row = conn.execute("SELECT xact_commit, numbackends, deadlocks FROM pg_stat_database WHERE datname = %s",
                           [dbname]).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def step(db: str, args: argparse.Namespace, engines: int, work: Path, sample=None) -> dict:  # type: ignore[no-untyped-def]
    """One mailing through `engines` processes; `sample()` is called before they start and
    once all is sent (they still run)."""
    store, mid = make_store(db, args.n, work)  # type: ignore[arg-type]  (a URL or a path)
    if not args.cold:
        mailings.pause(store, BENCH, mid)
    if sample is not None:
        sample()
    procs = start_engines(db, engines, args.workers, "null:", ["--batch", str(args.batch)])  # type: ignore[arg-type]
    try:
        if not args.cold:
            # Every engine up (interpreter, imports, store open: ~0.6 s of CPU each)
            # before the mailing may send, so the rate is the engines' sending alone:
            # otherwise the last ones' start-up shares the two cores with the first
            # ones' sending, and more engines look slower for it.
            deadline = time.monotonic() + 60
            while len(live_engines(store)) < engines:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(live_engines(store))} of {engines} engines started")
                time.sleep(0.05)
            mailings.unpause(store, BENCH, mid)
        seconds, steady = sent_timings(store, mid, args.n)
        if sample is not None:
            sample()
    finally:
        stop_engines(procs)
        store.close()
    return {"seconds": round(seconds, 2), "rate": round(steady), "per_engine": round(steady / engines)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="recipients per step")
    ap.add_argument("--engines", default="1,2,4", help="engine processes on PostgreSQL, per step")
    ap.add_argument("--workers", type=int, default=16, help="sender tasks per engine")
    ap.add_argument("--batch", type=int, default=500, help="messages per claim")
    ap.add_argument("--fast", action="store_true", help="the tests' non-durable server settings (fsync off)")
    ap.add_argument("--cold", action="store_true",
                    help="let the mailing send while the engines still start (the first measurements' way)")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    base = step(str(work / "sqlite.db"), args, 1, work)
    print(json.dumps({"bench": "pg_throughput", "store": "sqlite", "engines": 1, **base, "ratio": 1.0,
                      "load": load()}), flush=True)
    rows = []
    with postgresql(durable=not args.fast) as server:
        for k in (int(x) for x in args.engines.split(",")):
            url = server.create_database()
            name = url.rsplit("/", 1)[1]
            seen: list[tuple[float, int, int, int]] = []
            result = step(url, args, k, work,
                          lambda: seen.append((time.perf_counter(), *server_counters(server, name))))
            (t0, before, _, _), (t1, after, connections, deadlocks) = seen
            elapsed = t1 - t0
            row = {"bench": "pg_throughput", "store": "postgresql", "durable": not args.fast, "engines": k,
                   **result, "ratio": round(result["rate"] / base["rate"], 2),
                   "server_commits_per_s": round((after - before) / elapsed),
                   "connections": connections, "deadlocks": deadlocks, "load": load()}
            rows.append(row)
            print(json.dumps(row), flush=True)
            server.drop_database(name)
    print(json.dumps({"bench": "pg_throughput", "sqlite_1": base["rate"],
                      **{f"pg_{r['engines']}": r["rate"] for r in rows},
                      **{f"ratio_pg_{r['engines']}": r["ratio"] for r in rows}, "load": load()}))


if __name__ == "__main__":
    main()
