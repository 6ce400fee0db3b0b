"""Import a large recipients CSV and measure time and peak memory (not a test: it takes a while).

    python bench/import_scale.py                     # 1,000,000 rows
    python bench/import_scale.py --rows 100000 1000000

Each size runs in a fresh process, so the peak RSS (ru_maxrss) belongs to that
import alone. Afterwards it times the reads the console repeats every second
(`list_mailings`, `status.overview`) on that store and on an empty one: they read
maintained counters, so they must not slow down with the number of messages.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailconsole.store import Actor, Store, accounts, mailings, queue, status
from mailconsole.store.importer import create_mailing


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,name,city\n")
        for i in range(rows):
            f.write(f"user{i}@example.net,User {i},City {i % 97}\n")


def per_call_ms(fn, repeat: int = 50) -> float:
    fn()  # warm the page cache and the connection pool
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def reads(store: Store) -> dict[str, float]:
    return {
        "list_mailings_ms": per_call_ms(lambda: mailings.list_mailings(store, planned=True)),
        "overview_ms": per_call_ms(lambda: status.overview(store)),
    }


def run_one(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "recipients.csv"
        write_csv(csv_path, rows)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        empty = Store(str(tmpdir / "empty.db"))
        empty_reads = reads(empty)
        empty.close()

        store = Store(str(tmpdir / "store.db"))
        start = time.perf_counter()
        result = create_mailing(
            store, Actor("bench"), name="scale", sender="news@shop.example", subject="Hello {{ name }}",
            text_body="Dear {{ name }} in {{ city }}\n", html_body=None, recipients=csv_path,
        )
        import_s = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert result.recipients == rows
        full_reads = reads(store)
        claim_ms = per_call_ms(lambda: queue.claim(store, "bench", 100, 60), repeat=20)
        db_mib = sum(p.stat().st_size for p in tmpdir.glob("store.db*")) / 2**20
        # The operator's incident path on a full queue: stop, preview the resume, delete, purge.
        actor = Actor("bench")
        t = time.perf_counter()
        accounts.stop(store, actor)
        stop_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        accounts.resume_preview(store)
        preview_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        mailings.delete_mailing(store, actor, result.mailing_id)
        delete_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        mailings.purge_deleted(store)
        purge_s = time.perf_counter() - t
        store.close()
    return {
        "rows": rows, "import_s": round(import_s, 1), "rows_per_s": round(rows / import_s),
        "peak_rss_mib": round(peak_kib / 1024, 1), "rss_before_import_mib": round(rss_before / 1024, 1),
        "db_mib": round(db_mib), "empty": {k: round(v, 2) for k, v in empty_reads.items()},
        "full": {k: round(v, 2) for k, v in full_reads.items()}, "claim_100_ms": round(claim_ms, 2),
        "stop_ms": round(stop_ms, 1), "preview_ms": round(preview_ms, 1), "delete_ms": round(delete_ms, 1),
        "purge_s": round(purge_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.rows[0])))
        return
    for rows in args.rows:
        out = subprocess.run([sys.executable, __file__, "--child", "--rows", str(rows)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        print(
            f"{r['rows']:>9,} rows: import {r['import_s']} s ({r['rows_per_s']:,} rows/s), "
            f"peak RSS {r['peak_rss_mib']} MiB (before import {r['rss_before_import_mib']} MiB), store {r['db_mib']} MiB; "
            f"list_mailings {r['full']['list_mailings_ms']} ms (empty store {r['empty']['list_mailings_ms']} ms), "
            f"status.overview {r['full']['overview_ms']} ms (empty {r['empty']['overview_ms']} ms), "
            f"claim 100 {r['claim_100_ms']} ms; stop {r['stop_ms']} ms, resume preview {r['preview_ms']} ms, "
            f"delete {r['delete_ms']} ms, purge {r['purge_s']} s"
        )


if __name__ == "__main__":
    main()
