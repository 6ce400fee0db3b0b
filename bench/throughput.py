"""Throughput: one mailing of N recipients (two merge fields, ~2 KB body) through K engine processes.

Run with the project's Python; prints one JSON line. The timer starts when the
engines are launched and stops when the store says every message is sent.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import make_store, sent_timings, start_engines, stop_engines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--transport", default="null:")
    ap.add_argument("--engines", type=int, default=1, help="engine processes")
    ap.add_argument("--workers", type=int, default=16, help="connections per engine process")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--work", default=None, help="directory for the store and CSV (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "throughput.db"
    store, mid = make_store(db, args.n, work)
    t0 = time.perf_counter()
    procs = start_engines(db, args.engines, args.workers, args.transport, ["--batch", str(args.batch)])
    try:
        seconds, steady = sent_timings(store, mid, args.n)
    finally:
        stop_engines(procs)
    print(json.dumps({
        "bench": "engine", "transport": args.transport, "n": args.n, "engines": args.engines,
        "workers": args.workers, "batch": args.batch, "seconds": round(seconds, 2),
        "rate": round(args.n / seconds), "rate_after_start": round(steady), "wall_including_start": round(time.perf_counter() - t0, 2),
    }))


if __name__ == "__main__":
    main()
