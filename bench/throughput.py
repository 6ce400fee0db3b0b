"""Throughput: one mailing of N recipients (two merge fields, ~2 KB body) through K engine processes.

Run with the project's Python; prints one JSON line. The timer starts when the
engines are launched and stops when the store says every message is sent.

`--slow-relay MS` sends to a sink started here that answers each end-of-data dot
after MS milliseconds (a slow relay: each connection then carries at most one
message per MS), and adds the engines' CPU time per message (every thread,
start-up included) to the line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import make_store, sent_timings, start_engines, stop_engines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--transport", default="null:")
    ap.add_argument("--engines", type=int, default=1, help="engine processes")
    ap.add_argument("--workers", type=int, default=16, help="connections per engine process")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--work", default=None, help="directory for the store and CSV (default: a temp dir)")
    ap.add_argument("--slow-relay", type=float, default=None, metavar="MS",
                    help="send to a sink started here that answers each dot after MS milliseconds")
    args = ap.parse_args()
    sink = None
    if args.slow_relay is not None:
        port = _free_port()
        sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("recording_sink.py")), str(port),
                                 os.devnull, "--delay-ms", str(args.slow_relay)])
        time.sleep(1.0)
        args.transport = f"smtp://127.0.0.1:{port}"
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "throughput.db"
    store, mid = make_store(db, args.n, work)
    t0 = time.perf_counter()
    procs = start_engines(db, args.engines, args.workers, args.transport, ["--batch", str(args.batch)])
    cpu = 0.0
    try:
        seconds, steady = sent_timings(store, mid, args.n)
    finally:
        if sink is None:
            stop_engines(procs)
        else:  # the engines' own CPU, every thread, start-up included
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                _, _, usage = os.wait4(p.pid, 0)
                p.returncode = 0
                cpu += usage.ru_utime + usage.ru_stime
            sink.terminate()
            sink.wait(10)
    extra = {} if sink is None else {"slow_relay_ms": args.slow_relay, "engine_cpu_us": round(cpu / args.n * 1e6, 1),
                                     "bound": round(args.engines * args.workers / (args.slow_relay / 1000))}
    print(json.dumps({**extra,
        "bench": "engine", "transport": args.transport, "n": args.n, "engines": args.engines,
        "workers": args.workers, "batch": args.batch, "seconds": round(seconds, 2),
        "rate": round(args.n / seconds), "rate_after_start": round(steady), "wall_including_start": round(time.perf_counter() - t0, 2),
    }))


if __name__ == "__main__":
    main()
