"""The stop intent: how long dots keep reaching the SMTP server after a stop while the store is busy.

Usage: python bench/stop_intent.py [--runs 3] [--rows 60000] [--hold 3] [--work DIR]

A real engine process (`mailconsole serve`, 4 connections) sends to a real
local SMTP server (aiosmtpd, in this process, which notes when each message's
dot was answered). Once it sends steadily, another process takes the store's
write lock for --hold seconds, and a stop starts in a new process at once
(interpreter start-up included, as for `mailconsole stop`): with the stop
intent (the default), and without it (intent=False: the stop only waits for
the lock). Measured: seconds from the stop process's start to the last message
the server accepted, and how many it accepted in that time. Runs alternate.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from common import make_store, start_engines, stop_engines
from mailconsole.store import Actor, accounts
from mailconsole.store.retry import until_applied

HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
""")
STOPPER = textwrap.dedent("""
    import sys, time
    from mailconsole.store import Actor, Store, accounts
    accounts.stop(Store(sys.argv[1]), Actor("bench"), reason="bench", intent=sys.argv[2] == "1",
                  on_intent=lambda intent: print(time.time(), flush=True))
""")


class Arrivals:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.times.append(time.time())
        return "250 2.0.0 queued"

    def since(self, t: float) -> list[float]:
        with self.lock:
            return [x for x in self.times if x >= t]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--hold", type=float, default=3.0)
    # Messages per claim: with 1000 the engine has more in hand than it sends while the
    # store is held, as a fast engine would; with the default 100 it runs dry within a
    # second here (aiosmtpd takes ~250 msgs/s), and stops sending for lack of claims.
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp())
    db = work / "stop-intent.db"
    store, _ = make_store(db, a.rows, work)
    arrivals = Arrivals()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(arrivals, hostname="127.0.0.1", port=port)
    controller.start()
    engines = start_engines(db, 1, 4, f"smtp://127.0.0.1:{port}", ["--batch", str(a.batch)])
    results: dict[str, list[dict]] = {"intent": [], "no intent": []}
    try:
        for run in range(a.runs):
            for variant in ("intent", "no intent"):
                # Sending steadily: at least 200 accepted in the last second.
                deadline = time.time() + 60
                while len(arrivals.since(time.time() - 1.0)) < 200:
                    if time.time() > deadline:
                        raise SystemExit("the engine does not send")
                    time.sleep(0.1)
                holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(a.hold)],
                                          stdout=subprocess.PIPE, text=True)
                assert holder.stdout.readline().strip() == "holding"
                t0 = time.time()
                stopper = subprocess.run([sys.executable, "-c", STOPPER, str(db), "1" if variant == "intent" else "0"],
                                         stdout=subprocess.PIPE, text=True)
                posted = float(stopper.stdout.split()[0]) - t0 if stopper.stdout.strip() else None
                t_done = time.time()
                holder.wait()
                time.sleep(1.0)  # anything still on its way arrives
                after = arrivals.since(t0)
                last = max(after) - t0 if after else 0.0
                results[variant].append({
                    "last_dot_s": round(last, 3), "dots_after_start": len(after),
                    "stop_returned_s": round(t_done - t0, 3), "ok": stopper.returncode == 0,
                    "intent_posted_s": round(posted, 3) if posted is not None else None,
                })
                until_applied(lambda patience: accounts.resume(store, Actor("bench")))
    finally:
        stop_engines(engines)
        controller.stop()
        store.close()
    summary = {
        v: {
            "median_last_dot_s": statistics.median(r["last_dot_s"] for r in rs),
            "max_last_dot_s": max(r["last_dot_s"] for r in rs),
            "median_dots_after_start": statistics.median(r["dots_after_start"] for r in rs),
            "median_stop_returned_s": statistics.median(r["stop_returned_s"] for r in rs),
            "median_intent_posted_s": (statistics.median(r["intent_posted_s"] for r in rs)
                                       if all(r["intent_posted_s"] is not None for r in rs) else None),
            "runs": rs,
        }
        for v, rs in results.items()
    }
    print(json.dumps({"bench": "stop_intent", "hold_s": a.hold, "engine_connections": 4, "batch": a.batch, **summary}))


if __name__ == "__main__":
    main()
