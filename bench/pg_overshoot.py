"""Stop overshoot on PostgreSQL with engines on three hosts (network namespaces; needs root).

The cluster of the many-hosts tests (tests/hosts/cluster.py): PostgreSQL on one
namespace host, the recording sink (kernel receive stamps) on another,
`mailconsole serve` on three engine hosts, `mailconsole stop` from a fourth. Each
run queues a fresh mailing, resumes, lets the engines reach full rate, stops.
Overshoot = dots the sink accepted after the stop command returned. Also: stop
commit -> every engine's row acknowledges the new generation: from the server's
own commit timestamps (track_commit_timestamp) of the stop and of each engine's
acknowledging write, so neither the stop's wait for its lock nor this script's
polling (every few ms from the machine, itself slowed by the load) counts; the
polled figure is printed beside it. Prints one JSON line per run and a summary,
with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hosts.cluster import MAILCONSOLE, Cluster, engine_config  # noqa: E402

from sqlalchemy import text  # noqa: E402

from mailconsole.store import Actor, Store, accounts  # noqa: E402
from mailconsole.store.engines import live_engines  # noqa: E402
from mailconsole.store.importer import create_mailing  # noqa: E402
from mailconsole.store.mailings import delete_mailing, get_mailing  # noqa: E402

BENCH = Actor("bench")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def committed_at(store: Store, account_id: int, engine_ids: list[str]) -> tuple[float, float]:
    """When the stop committed, and when the last engine's acknowledging write did (the server's clock).

    Read once every engine is seen acknowledging, before anything else writes their
    rows: a heartbeat written in between makes the second figure later, never earlier.
    """
    with store.read() as conn:
        stop = conn.execute(text("SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM accounts "
                                 "WHERE id = :id"), {"id": account_id}).scalar_one()
        acks = conn.execute(text("SELECT max(extract(epoch FROM pg_xact_commit_timestamp(xmin))) FROM engines "
                                 "WHERE id = ANY(:ids)"), {"ids": engine_ids}).scalar_one()
    return float(stop), float(acks)


def slow_statements(logfile: Path, start: int) -> tuple[list[str], int]:
    """The server's slowest logged statements since byte `start` (at most three, "ms statement"),
    and where the log ends now."""
    with open(logfile, "rb") as f:
        f.seek(start)
        new = f.read()
    found = []
    for m in re.finditer(rb"duration: ([0-9.]+) ms +(?:statement|execute [^:]*): ([^\n]{0,60})", new):
        found.append((float(m.group(1)), m.group(2).decode(errors="replace").strip()))
    found.sort(reverse=True)
    return [f"{ms:.0f} ms {what}" for ms, what in found[:3]], start + len(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--n", type=int, default=5000, help="recipients per run")
    ap.add_argument("--workers", type=int, default=8, help="sender tasks per engine")
    ap.add_argument("--warmup", type=int, default=600, help="messages sent before the stop")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mc-bench-hosts-"))
    recipients = work / "recipients.csv"
    recipients.write_text("email,name\n" + "".join(f"user{i}@example.com,User {i}\n" for i in range(args.n)))
    results = []
    # Statements over 50 ms go to the server's log: each run names its slowest (a stop's
    # COMMIT that is slow is the server's time, not the engines').
    with Cluster(work, pg_settings={"track_commit_timestamp": "on", "log_min_duration_statement": "50"}) as cluster:
        log_seen = 0
        os.environ.update(cluster.pg.env())
        url = cluster.new_store()
        store = Store(url)
        accounts.stop(store, BENCH, reason="bench setup")
        config = engine_config(work / "engine.toml", workers=args.workers)
        for host in cluster.engine_hosts:
            cluster.serve(host, url, config)
        hosts = len(cluster.engine_hosts)
        deadline = time.time() + 120
        while len(live_engines(store)) < hosts:
            assert time.time() < deadline, "engines did not start"
            time.sleep(0.05)
        for run in range(args.runs):
            mid = create_mailing(store, BENCH, name=f"run {run}", sender="shop@example.com", subject="Hi {{ name }}",
                                 text_body="Dear {{ name }},\n" + "Lorem ipsum dolor sit amet.\n" * 40,
                                 html_body=None, recipients=recipients).mailing_id
            cluster.clear_dots()
            accounts.resume(store, BENCH)
            while get_mailing(store, mid).sent < args.warmup:
                time.sleep(0.005)
            sample = get_mailing(store, mid).sent
            time.sleep(0.5)
            rate = (get_mailing(store, mid).sent - sample) / 0.5
            stopper = cluster.operator.popen(
                [MAILCONSOLE, "--db", url, "stop", "--json", "--relay-wait", "0",
                 "--reason", f"bench run {run}"], env=cluster.env, stdout=-1, stderr=-1, text=True)
            generation, acked_at, commit_ms = None, None, None
            give_up = time.time() + 60
            while acked_at is None and time.time() < give_up:
                state = accounts.state(store)
                if state.stopped and generation is None:
                    generation = state.generation
                if generation is not None:
                    engines = live_engines(store)
                    if len(engines) == hosts and all(e.acknowledged_generation(state.id) >= generation for e in engines):
                        acked_at = time.time()
                        stop_at, last_ack_at = committed_at(store, state.id, [e.id for e in engines])
                        commit_ms = round((last_ack_at - stop_at) * 1000, 1)
                time.sleep(0.001)
            out, err = stopper.communicate()
            returned = time.time()
            state = accounts.state(store)
            confirmed = json.loads(out)["confirmed"] if stopper.returncode == 0 else None
            time.sleep(1.0)  # anything late arrives meanwhile
            dots = cluster.dots()
            late = [d for d in dots if d.at > returned]
            slow, log_seen = slow_statements(cluster.pg.logfile, log_seen)
            results.append({
                "run": run, "rate_at_stop": round(rate), "overshoot": len(late), "confirmed": confirmed,
                "ack_ms": commit_ms,
                "ack_ms_polled": round((acked_at - state.stopped_at) * 1000, 1) if acked_at else None,
                "stop_cmd_ms": round((returned - state.stopped_at) * 1000, 1), "slow_statements": slow,
                "accepted": len(dots), "left_unsent": args.n - len(dots), "by_host": dict(cluster.dots_by_host(dots)), "load": load(),
            })
            print(json.dumps(results[-1]), flush=True)
            delete_mailing(store, BENCH, mid)
        store.close()
    acks = [r["ack_ms"] if r["ack_ms"] is not None else float("inf") for r in results]
    print(json.dumps({
        "bench": "pg_overshoot", "runs": len(results), "engine_hosts": 3, "workers": args.workers,
        "overshoot_total": sum(r["overshoot"] for r in results),
        # A run whose mailing was all sent before the stop stopped nothing: it proves nothing.
        "runs_stopped_mid_mailing": sum(1 for r in results if r["left_unsent"] > 0),
        "runs_with_overshoot": sum(1 for r in results if r["overshoot"]),
        "all_confirmed": all(r["confirmed"] for r in results),
        "ack_ms_median": statistics.median(acks), "ack_ms_max": max(acks),
        "ack_ms_polled_median": statistics.median(r["ack_ms_polled"] or float("inf") for r in results),
        "rate_at_stop_median": statistics.median(r["rate_at_stop"] for r in results), "load": load(),
    }))


if __name__ == "__main__":
    main()
