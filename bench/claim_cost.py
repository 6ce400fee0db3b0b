"""Claim cost: the claim statement alone, on a store of N queued messages, with S suppressed addresses.

Claims batches of --batch until the queue is empty (no sending: only the claim
is timed) and prints one JSON line with the median and 95th percentile cost per
claimed message. With --suppressed S, S addresses of the account (none of them
recipients, so every claim does the lookup and finds nothing) are on the
suppression list; the store's schema must have one (version 3 or later).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import make_store

from mailconsole.store import queue


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--suppressed", type=int, default=0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mc-claim-"))
    store, _mid = make_store(work / "claim.db", args.n, work)
    if args.suppressed:
        with store.write() as conn:
            conn.exec_driver_sql(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) "
                "INSERT INTO suppressions (account_id, email, created_at, created_by) "
                "SELECT 1, 'gone' || i || '@example.org', 0, 'bench' FROM s",
                (args.suppressed,),
            )
    per_message: list[float] = []
    total = 0
    while True:
        t = time.perf_counter()
        got = queue.claim(store, "bench", args.batch, 3600)
        dt = time.perf_counter() - t
        if not got:
            break
        total += len(got)
        per_message.append(dt / len(got) * 1e6)
    store.close()
    per_message.sort()
    print(json.dumps({
        "bench": "claim", "n": args.n, "claimed": total, "batch": args.batch, "suppressed": args.suppressed,
        "us_per_message_median": round(statistics.median(per_message), 2),
        "us_per_message_p95": round(per_message[int(len(per_message) * 0.95)], 2),
    }))


if __name__ == "__main__":
    main()
