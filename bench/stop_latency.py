"""Stop latency (call -> durable) while other processes save a huge template, import and purge.

Usage: python bench/stop_latency.py [--rows 1000000] [--stops 50] [--template-mb 7] [--work DIR]

Three competing jobs run in their own processes on one store, started together:
  template: `revisions.save_revision` of a ~7 MB body (what `template set` does)
  import:   create_mailing of a --rows recipients CSV (validation, then expansion)
  purge:    purge_deleted of a deleted mailing with --rows unsent messages
Meanwhile this process stops the account --stops times (accounts.stop, exactly
what `mailconsole stop` calls once its interpreter is up), resuming in between.
Each stop's latency is from the call to its return: committed with
synchronous=FULL and past the dot fence. Every stop is attributed to the jobs
running when it started and to the lock holders it waited for (from StoreBusy).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

from mailconsole.store import Actor, Store, accounts, mailings
from mailconsole.store.errors import StoreBusy
from mailconsole.store.importer import create_mailing
from mailconsole.store.retry import until_applied

TARGET_MAX = 0.250

CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from mailconsole.store import Actor, Store, revisions
    from mailconsole.store.importer import create_mailing
    from mailconsole.store.mailings import purge_deleted
    job, db, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    store = Store(db)
    actor = Actor(job)
    print(json.dumps({"job": job, "start": time.time()}), flush=True)
    saves = 0
    if job == "template":
        # Saved again and again (each a new revision) for as long as the import runs.
        body, until = Path(arg).read_text(), time.time() + float(sys.argv[5])
        while saves == 0 or time.time() < until:
            revisions.save_revision(store, actor, int(sys.argv[4]), text_body=body + f"revision {saves}\\n")
            saves += 1
    elif job == "import":
        create_mailing(store, actor, name="imported", sender="shop@example.com", subject="Hi {{ name }}",
                       text_body="Dear {{ name }}\\n", html_body=None, recipients=Path(arg))
    elif job == "purge":
        purge_deleted(store)
    print(json.dumps({"job": job, "end": time.time(), "saves": saves}), flush=True)
""")


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email", "name"])
        for i in range(n):
            w.writerow([f"user{i}@example.com", f"User {i}"])


def deleted_mailing_of(store: Store, db: Path, work: Path, n: int) -> int:
    """A deleted mailing with n unsent rows, inserted straight in SQL (set-up, not measured)."""
    small = work / "one.csv"
    write_csv(small, 1)
    mid = create_mailing(store, Actor("bench"), name="to purge", sender="shop@example.com", subject="Hi",
                         text_body="Hello\n", html_body=None, recipients=small).mailing_id
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
        "INSERT INTO messages (mailing_id, email, fields, state, due_at, attempts, recovered) "
        "SELECT ?, 'p' || i || '@example.org', '{}', 'queued', ?, 0, 0 FROM k",
        (n - 1, mid, time.time()),
    )
    conn.execute("UPDATE mailings SET recipients = ?, expected = ?, queued = ? WHERE id = ?", (n, n, n, mid))
    conn.execute("COMMIT")
    conn.close()
    mailings.delete_mailing(store, Actor("bench"), mid)
    return mid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--stops", type=int, default=50)
    ap.add_argument("--template-mb", type=float, default=7.0)
    ap.add_argument("--template-seconds", type=float, default=30.0, help="how long the template is saved again and again")
    ap.add_argument("--interval", type=float, default=0.3, help="seconds between a resume and the next stop")
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp())
    db = work / "stop-latency.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    store = Store(str(db))
    actor = Actor("operator")

    ten = work / "ten.csv"
    write_csv(ten, 10)
    template_mailing = create_mailing(store, actor, name="big template", sender="shop@example.com",
                                      subject="Hi {{ name }}", text_body="Hello {{ name }}\n", html_body=None,
                                      recipients=ten).mailing_id
    body = work / "big-body.txt"
    # A big newsletter: megabytes of text with a merge field every few hundred lines
    # (a template may have at most templating.MAX_TAGS tags a part).
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n"
    lines = int(a.template_mb * 1e6 / len(line))
    every = max(1, lines // 1500)
    body.write_text("Dear {{ name }},\n" + "".join(
        line if i % every else line.replace("tempor.", "tempor, {{ name }}.") for i in range(lines)))
    rows_csv = work / f"import-{a.rows}.csv"
    if not rows_csv.exists():
        write_csv(rows_csv, a.rows)
    deleted_mailing_of(store, db, work, a.rows)

    jobs = {
        "template": [str(body), str(template_mailing), str(a.template_seconds)],
        "import": [str(rows_csv)],
        "purge": ["-"],
    }
    script = work / "bench_job.py"  # a script, so that the lock holder's command line names the job
    script.write_text(CHILD)
    procs = {
        # The jobs are load, not subjects: they wait for each other (the template save
        # holds the lock for many seconds) instead of failing after the 5 s busy timeout.
        job: subprocess.Popen([sys.executable, str(script), job, str(db), *args], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "MAILCONSOLE_BUSY_TIMEOUT_MS": "600000"})
        for job, args in jobs.items()
    }
    spans: dict[str, dict[str, float]] = {}
    for job, p in procs.items():
        spans[job] = json.loads(p.stdout.readline())  # started
    time.sleep(0.5)  # the jobs are under way (the import is still validating its CSV)

    stops: list[dict] = []
    for i in range(a.stops):
        running = sorted(job for job, p in procs.items() if p.poll() is None)
        holders: Counter[str] = Counter()

        def seen(busy: StoreBusy, waited: float) -> None:
            words = (busy.holder or "").split()
            holders[words[words.index("(bench_job.py") + 1] if "(bench_job.py" in words else "other"] += 1

        t0 = time.perf_counter()
        state = accounts.stop(store, actor, reason=f"bench {i}", on_wait=seen)
        latency = time.perf_counter() - t0
        applied = accounts.state(store).stopped and state.stopped
        stops.append({"latency": latency, "applied": applied, "running": running, "holders": dict(holders)})
        until_applied(lambda patience: accounts.resume(store, actor))
        time.sleep(a.interval)

    for job, p in procs.items():
        out = p.stdout.read()
        p.wait()
        for text in out.splitlines():
            spans[job].update(json.loads(text))
    store.close()

    lat = sorted(s["latency"] for s in stops)

    def ms(x: float) -> float:
        return round(x * 1000, 1)

    by_job: dict[str, dict] = {}
    for job in jobs:
        mine = sorted(s["latency"] for s in stops if job in s["running"])
        if mine:
            by_job[job] = {"stops": len(mine), "median_ms": ms(statistics.median(mine)), "max_ms": ms(mine[-1])}
    quiet = sorted(s["latency"] for s in stops if "template" not in s["running"])
    if quiet:
        by_job["import+purge, no template"] = {
            "stops": len(quiet), "median_ms": ms(statistics.median(quiet)),
            "p95_ms": ms(quiet[int(0.95 * (len(quiet) - 1))]), "max_ms": ms(quiet[-1]),
        }
    slowest = max(stops, key=lambda s: s["latency"])
    print(json.dumps({
        "bench": "stop_latency", "rows": a.rows, "template_mb": a.template_mb, "stops": len(stops),
        "applied": sum(s["applied"] for s in stops),
        "median_ms": ms(statistics.median(lat)), "p95_ms": ms(lat[int(0.95 * (len(lat) - 1))]), "max_ms": ms(lat[-1]),
        # Met only if every competing job really ran: a job that failed is no load.
        "target_max_ms": TARGET_MAX * 1000,
        "met": lat[-1] < TARGET_MAX and all(s["applied"] for s in stops) and all(p.returncode == 0 for p in procs.values()),
        "during_job": by_job,
        "slowest": {"ms": ms(slowest["latency"]), "running": slowest["running"], "waited_for": slowest["holders"]},
        "job_seconds": {j: round(s["end"] - s["start"], 1) if "end" in s else None for j, s in spans.items()},
        "template_saves": spans["template"].get("saves", 0),
        "jobs_ok": {j: p.returncode == 0 for j, p in procs.items()},
    }))


if __name__ == "__main__":
    main()
