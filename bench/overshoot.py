"""Stop overshoot: how many messages a server accepts after `mailconsole stop` returns.

At full rate, `mailconsole stop` runs as its own process; the recording sink (a
separate process) timestamps every accepted end-of-data dot. Overshoot = dots
accepted after the stop command returned. Also measured: stop commit -> every
engine's heartbeat acknowledges the new stop generation (polled every ~1 ms).
Each run uses a fresh mailing; the engines keep running across runs.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import make_store, start_engines, stop_engines

from mailconsole.store import Actor, accounts
from mailconsole.store.engines import live_engines
from mailconsole.store.importer import create_mailing
from mailconsole.store.mailings import delete_mailing, get_mailing

BENCH = Actor("bench")
MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--n", type=int, default=20_000, help="recipients per run")
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2000, help="messages sent before the stop")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "overshoot.db"
    times_file = work / "accepted.txt"
    times_file.write_text("")
    port = free_port()
    sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("recording_sink.py")), str(port), str(times_file)])
    store, mid = make_store(db, args.n, work)
    accounts.stop(store, BENCH, reason="bench setup")
    engines = start_engines(db, args.engines, args.workers, f"smtp://127.0.0.1:{port}")
    results = []
    try:
        deadline = time.time() + 30
        while len(live_engines(store)) < args.engines:
            assert time.time() < deadline, "engines did not start"
            time.sleep(0.05)
        recipients = work / f"recipients-{args.n}.csv"
        for run in range(args.runs):
            if run:
                mid = create_mailing(
                    store, BENCH, name=f"run {run}", sender="shop@example.com", subject="Hi {{ name }}",
                    text_body="Dear {{ name }}, code {{ code }}\n" * 40, html_body=None, recipients=recipients,
                ).mailing_id
            accounts.resume(store, BENCH)
            while get_mailing(store, mid).sent < args.warmup:
                time.sleep(0.005)
            rate_sample = get_mailing(store, mid).sent
            time.sleep(0.5)
            rate = (get_mailing(store, mid).sent - rate_sample) / 0.5
            proc = subprocess.Popen([MAILCONSOLE, "--db", str(db), "stop", "--reason", f"bench run {run}"],
                                    stdout=subprocess.DEVNULL)
            # Poll for the acknowledgement while the stop command runs.
            gen = None
            acked_at = None
            while acked_at is None:
                st = accounts.state(store)
                if st.stopped and gen is None:
                    gen = st.generation
                if gen is not None:
                    engs = live_engines(store)
                    if len(engs) == args.engines and all(e.acknowledged_generation(st.id) >= gen for e in engs):
                        acked_at = time.time()
                        break
                time.sleep(0.001)
            proc.wait()
            returned_at = time.time()
            st = accounts.state(store)
            time.sleep(1.0)  # let anything late arrive
            accepted = [float(x) for x in times_file.read_text().split()]
            late = [t for t in accepted if t > returned_at]
            m = get_mailing(store, mid)
            results.append({
                "run": run, "rate_at_stop": round(rate), "overshoot": len(late),
                "ack_ms": round((acked_at - st.stopped_at) * 1000, 1),
                "stop_cmd_ms": round((returned_at - st.stopped_at) * 1000, 1),
                "sent": m.sent, "accepted_total": len(accepted),
            })
            print(json.dumps(results[-1]), flush=True)
            delete_mailing(store, BENCH, mid)
            times_file.write_text("")
    finally:
        stop_engines(engines)
        sink.terminate()
        sink.wait()
    acks = [r["ack_ms"] for r in results]
    print(json.dumps({
        "bench": "overshoot", "runs": len(results), "engines": args.engines, "workers": args.workers,
        "overshoot_total": sum(r["overshoot"] for r in results),
        "runs_with_overshoot": sum(1 for r in results if r["overshoot"]),
        "ack_ms_median": statistics.median(acks), "ack_ms_max": max(acks),
        "rate_at_stop_median": statistics.median(r["rate_at_stop"] for r in results),
    }))


if __name__ == "__main__":
    main()
