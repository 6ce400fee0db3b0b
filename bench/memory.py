"""Engine peak memory with a large queue: one `mailconsole serve` against N queued messages.

The engine holds at most workers + 8 x batch messages in hand, whatever the
queue size; this checks that the rest (SQLite cache, templates, channels) stays
small too. Reports the process's peak RSS (VmHWM) after sending for a while.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import make_store, start_engines, stop_engines

from mailconsole.store.mailings import get_mailing


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--transport", default="null:")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "memory.db"
    t0 = time.perf_counter()
    store, mid = make_store(db, args.n, work)
    import_seconds = time.perf_counter() - t0
    [proc] = start_engines(db, 1, args.workers, args.transport, ["--batch", "500"])
    try:
        time.sleep(args.seconds)
        peak = peak_rss_mb(proc.pid)
        sent = get_mailing(store, mid).sent
    finally:
        stop_engines([proc])
    print(json.dumps({
        "bench": "memory", "queued": args.n, "import_seconds": round(import_seconds, 1),
        "ran_seconds": args.seconds, "sent_meanwhile": sent, "peak_rss_mb": round(peak, 1),
    }))


if __name__ == "__main__":
    main()
