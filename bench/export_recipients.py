"""Export the recipients of a revision sent to 1,000,000 people: time and peak memory.

    python bench/export_recipients.py                 # 1,000,000 sent messages
    python bench/export_recipients.py --rows 200000

Builds a store with one mailing whose messages were all sent (revision 1 to
90 %, revision 2 to the rest), inserted directly with SQLAlchemy Core (here
only: the importer and the engine would take minutes for it), then runs each
export in a fresh process, so its peak RSS (ru_maxrss) is that export's alone:

- `recipients.write_csv` of revision 1, and the same with tracemalloc (Python's
  own allocations, peak: what the chunked read keeps in memory);
- `mailconsole recipients ID --revision 1 --csv FILE`, the whole command;
- baselines on the same query: the sqlite3 command-line shell's own CSV output
  (`-csv`, raw columns: the merge fields stay JSON), and the plain way in Python
  (one SELECT iterated inside one read transaction, csv.writer, no chunks).

Then, on the same store: one chunk's query with and without the index
ix_messages_recipients (dropped inside a transaction that is rolled back), and
how long building that index takes (what `mailconsole migrate` to schema 4 holds
the write lock for on a store of this size).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 50_000
CHUNK = 5000  # store.CHUNK (not imported here: see peak_rss_mib)
QUERY = ("SELECT email, fields, sent_at, revision_id, id FROM messages "
         "WHERE mailing_id = ? AND state = 'sent' AND revision_id = ? ORDER BY id")


def build(db: Path, rows: int) -> tuple[int, int, int]:
    """(mailing id, revision 1's id, messages sent with it) of a fresh store of `rows` sent messages."""
    from sqlalchemy import insert, select, update

    from mailconsole.store import Actor, Store
    from mailconsole.store.importer import create_mailing
    from mailconsole.store.revisions import save_revision
    from mailconsole.store.schema import mailings, messages, revisions

    seed = db.with_name("seed.csv")
    seed.write_text("email,name,code\nseed@example.com,Seed,C0\n", encoding="utf-8")
    store = Store(str(db))
    actor = Actor("bench")
    mid = create_mailing(store, actor, name="bench", sender="news@shop.example", subject="30% off, {{ name }}",
                         text_body="Dear {{ name }}, your code is {{ code }}.\n", html_body=None,
                         recipients=seed).mailing_id
    with store.write() as conn:
        rev1 = conn.execute(select(revisions.c.id).where(revisions.c.mailing_id == mid)).scalar_one()
        conn.execute(messages.delete().where(messages.c.mailing_id == mid))
    save_revision(store, actor, mid, subject="20% off, {{ name }}")
    with store.read() as conn:
        rev2 = conn.execute(select(revisions.c.id).where(revisions.c.mailing_id == mid, revisions.c.number == 2)).scalar_one()
    faulty = rows * 9 // 10
    now = time.time()
    for start in range(0, rows, BATCH):
        batch = [
            {"mailing_id": mid, "email": f"user{i}@example.com", "fields": json.dumps({"name": f"User {i}", "code": f"C{i:07d}"}),
             "state": "sent", "due_at": now - 3600, "attempts": 1, "sent_at": now - 3600 + i / 1000,
             "revision_id": rev1 if i < faulty else rev2, "recovered": 0}
            for i in range(start, min(start + BATCH, rows))
        ]
        with store.write() as conn:
            conn.execute(insert(messages), batch)
    with store.write() as conn:
        conn.execute(update(mailings).where(mailings.c.id == mid).values(
            status="sent", expected=rows, recipients=rows, queued=0, sent=rows))
        conn.execute(update(revisions).where(revisions.c.id == rev1).values(sent=faulty))
        conn.execute(update(revisions).where(revisions.c.id == rev2).values(sent=rows - faulty))
    store.close()
    return mid, rev1, faulty


# -- the children: each prints one JSON object ------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak RSS since its exec (VmHWM). Not ru_maxrss: on Linux that
    keeps the high-water mark of the process before exec, i.e. of whoever forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(mode: str, db: str, out: str, mid: int, revision: int) -> dict:
    """One export in this (fresh) process: the store's, the store's under tracemalloc, or the plain one."""
    import_start = time.perf_counter()
    from mailconsole.store import Store, recipients

    rss_start = peak_rss_mib()
    start = time.perf_counter()
    extra: dict = {"imports_s": round(start - import_start, 2)}
    if mode in ("write_csv", "tracemalloc"):
        if mode == "tracemalloc":
            import tracemalloc

            tracemalloc.start()
        store = Store(db)
        n = recipients.write_csv(store, mid, out, revision=revision)
        store.close()
        if mode == "tracemalloc":
            extra["tracemalloc_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
    elif mode == "plain":
        # The obvious way: one query, iterated inside one read transaction.
        store = Store(db)
        with store.read() as conn:
            rid = conn.exec_driver_sql("SELECT id FROM revisions WHERE mailing_id = ? AND number = ?",
                                       (mid, revision)).scalar_one()
        store.close()
        conn = sqlite3.connect(db)
        n = 0
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["email", "name", "code", "sent_at", "revision", "message_id", "state"])
            for email, fields, sent_at, _rid, row_id in conn.execute(QUERY, (mid, rid)):
                values = json.loads(fields)
                w.writerow([email, values.get("name", ""), values.get("code", ""), sent_at, revision,
                            f"<m{row_id}>", "sent"])
                n += 1
        conn.close()
    else:
        raise SystemExit(f"unknown mode {mode}")
    return {"mode": mode, "rows": n, "seconds": round(time.perf_counter() - start, 2),
            "peak_rss_mib": peak_rss_mib(), "rss_at_start_mib": rss_start, **extra}


def run_child(mode: str, db: Path, out: Path, mid: int, revision: int = 1, rows: int = 0) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--db", str(db), "--out", str(out),
                           "--mailing", str(mid), "--revision", str(revision), "--rows", str(rows)],
                          check=True, capture_output=True, text=True)
    return json.loads(proc.stdout)


def timed_process(cmd: list[str], stdout: object = None) -> dict:
    """Wall time and peak RSS of a command (ru_maxrss from wait4: this process, which forked it,
    imports nothing big, so the mark it leaves in the child stays below the child's own)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout or subprocess.DEVNULL, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        err.seek(0)
        said = err.read().decode().strip()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {said}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stderr": said}


def chunk_ms(db: Path, mid: int, rev1: int, middle: int, *, without_index: bool) -> float:
    """Mean time of one chunk's query (5,000 rows from id `middle` on), with or without the index."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        if without_index:
            conn.execute("DROP INDEX ix_messages_recipients")  # rolled back below
        sql = ("SELECT id, email, fields, state, sent_at, revision_id, last_error FROM messages WHERE mailing_id = ? "
               "AND state = 'sent' AND revision_id = ? AND id > ? ORDER BY id LIMIT 5000")
        plan = " / ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, (mid, rev1, 0)))
        conn.execute(sql, (mid, rev1, middle)).fetchall()  # warm
        repeat = 5 if without_index else 20
        start = time.perf_counter()
        for k in range(repeat):
            assert len(conn.execute(sql, (mid, rev1, middle + (k % 4) * CHUNK)).fetchall()) == CHUNK
        ms = (time.perf_counter() - start) / repeat * 1000
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    print(f"  chunk query {'without' if without_index else 'with'} the index: {ms:.1f} ms  [{plan}]")
    return ms


def index_build_s(db: Path) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("DROP INDEX ix_messages_recipients")
        start = time.perf_counter()
        conn.execute("CREATE INDEX ix_messages_recipients ON messages (mailing_id, state, revision_id, id)")
        seconds = time.perf_counter() - start
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--mailing", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--revision", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "build":
        print(json.dumps(build(Path(args.db), args.rows)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.db, args.out, args.mailing, args.revision)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "store.db"
        start = time.perf_counter()
        mid, rev1, faulty = run_child("build", db, work / "unused", 0, rows=args.rows)
        size = sum(p.stat().st_size for p in work.glob("store.db*")) / 2**20
        print(f"store: {args.rows:,} sent messages ({faulty:,} with revision 1) built in "
              f"{time.perf_counter() - start:.1f} s, {size:.0f} MiB")
        print(f"  parent: peak RSS {peak_rss_mib()} MiB (what ru_maxrss of the processes it starts begins with)")
        for mode, revision in (("write_csv", 1), ("plain", 1), ("tracemalloc", 2)):
            r = run_child(mode, db, work / f"{mode}.csv", mid, revision)
            assert r["rows"] == (faulty if revision == 1 else args.rows - faulty), r
            print(f"  {mode:<12} revision {revision}: {r['rows']:,} rows in {r['seconds']} s "
                  f"({r['rows'] / r['seconds']:,.0f} rows/s), peak RSS {r['peak_rss_mib']} MiB "
                  f"(after imports {r['rss_at_start_mib']} MiB)"
                  + (f", tracemalloc peak {r['tracemalloc_peak_mib']} MiB" if "tracemalloc_peak_mib" in r else ""))
        exe = str(Path(sys.executable).with_name("mailconsole"))
        cli_out = work / "cli.csv"
        r = timed_process([exe, "--db", str(db), "recipients", str(mid), "--revision", "1", "--csv", str(cli_out)])
        print(f"  {'mailconsole recipients --csv':<12}: {r['seconds']} s, peak RSS {r['peak_rss_mib']} MiB; "
              f"it said: {r['stderr']}")
        assert (work / "write_csv.csv").read_bytes() == cli_out.read_bytes()
        csv_mib = cli_out.stat().st_size / 2**20
        if shutil.which("sqlite3"):
            with (work / "shell.csv").open("wb") as f:
                shell_sql = QUERY.replace("?", str(mid), 1).replace("?", str(rev1), 1)
                r = timed_process(["sqlite3", "-csv", "-header", str(db), shell_sql], stdout=f)
            print(f"  {'sqlite3 -csv shell':<12}: {r['seconds']} s, peak RSS {r['peak_rss_mib']} MiB (raw columns)")
        print(f"  the CSV: {csv_mib:.0f} MiB")
        with_index = chunk_ms(db, mid, rev1, faulty // 2, without_index=False)
        without = chunk_ms(db, mid, rev1, faulty // 2, without_index=True)
        print(f"  without the index one chunk costs {without / with_index:,.0f} times as much: the "
              f"{faulty // CHUNK:,} chunks of the export would spend ~{without * faulty / CHUNK / 1000:,.1f} s in queries "
              f"(with it: {with_index * faulty / CHUNK / 1000:,.2f} s)")
        print(f"  building ix_messages_recipients on {args.rows:,} messages: {index_build_s(db):.1f} s")


if __name__ == "__main__":
    main()
