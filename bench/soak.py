"""Soak: one big mailing end to end, with emergency stops and resumes at random moments.

Two `mailconsole serve` processes share one store: one sends to Postfix's
`smtp-sink`, the other to `recording_sink.py`, which timestamps every accepted
end-of-data dot (smtp-sink cannot), so every stop's overshoot is counted exactly
for that engine. Between stops the soak samples throughput and each engine's
RSS; at the end it recounts the queue against the maintained counters.
Prints JSON lines: one per stop, memory samples, and a final summary.

    python bench/soak.py --n 1000000 --sink-port PORT   # smtp-sink already listening
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import make_store, start_engines, stop_engines
from overshoot import MAILCONSOLE, free_port

from mailconsole.store import accounts
from mailconsole.store.engines import list_engines, live_engines
from mailconsole.store.mailings import get_mailing
from mailconsole.store.verify import mismatches, states


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class DotLog:
    """Reads the recording sink's timestamps as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.total = 0

    def new(self) -> list[float]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1  # only whole lines
        self.offset += cut
        stamps = [float(x) for x in data[:cut].split()]
        self.total += len(stamps)
        return stamps


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def one_stop(store, db: Path, dots: DotLog, expected_engines: int, number: int) -> dict:  # type: ignore[no-untyped-def]
    """Stop as an operator would, count dots accepted after it returned, wait for acknowledgements."""
    dots.new()  # everything before the stop
    t0 = time.time()
    subprocess.run([MAILCONSOLE, "--db", str(db), "stop", "--reason", f"soak {number}"],
                   check=True, stdout=subprocess.DEVNULL)
    returned = time.time()
    st = accounts.state(store)
    acked_ms = None
    while time.time() - returned < 30:
        engs = live_engines(store)
        if len(engs) == expected_engines and all(e.acknowledged_generation(st.id) >= st.generation for e in engs):
            acked_ms = round((time.time() - st.stopped_at) * 1000, 1)
            break
        time.sleep(0.005)
    time.sleep(1.0)  # anything the gate let through would have arrived by now
    late = [t for t in dots.new() if t > returned]
    return {"stop": number, "stop_cmd_ms": round((returned - t0) * 1000, 1), "ack_ms": acked_ms,
            "overshoot": len(late), "all_acknowledged": acked_ms is not None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--sink-port", type=int, required=True, help="smtp-sink listening on 127.0.0.1")
    ap.add_argument("--workers", type=int, default=8, help="connections per engine process")
    ap.add_argument("--stop-every", type=float, nargs=2, default=(10.0, 40.0), help="seconds between stops (min max)")
    ap.add_argument("--stopped-for", type=float, nargs=2, default=(0.5, 5.0), help="seconds stopped (min max)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between memory samples")
    ap.add_argument("--timeout", type=float, default=4 * 3600)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "soak.db"
    t_import = time.perf_counter()
    store, mid = make_store(db, args.n, work)
    emit({"import_seconds": round(time.perf_counter() - t_import, 1), "n": args.n})
    dot_file = work / "dots.txt"
    dot_file.write_text("")
    rec_port = free_port()
    recorder = subprocess.Popen([sys.executable, str(Path(__file__).with_name("recording_sink.py")), str(rec_port), str(dot_file)])
    batch = ["--batch", "200"]
    engines = (start_engines(db, 1, args.workers, f"smtp://127.0.0.1:{args.sink_port}", batch)
               + start_engines(db, 1, args.workers, f"smtp://127.0.0.1:{rec_port}", batch))
    dots = DotLog(dot_file)
    stops: list[dict] = []
    memory: list[dict] = []
    t0 = time.perf_counter()
    stopped_seconds = 0.0
    try:
        next_stop = time.perf_counter() + rnd.uniform(*args.stop_every)
        next_sample = time.perf_counter()
        while True:
            m = get_mailing(store, mid)
            now = time.perf_counter()
            if now >= next_sample:
                memory.append({"t": round(now - t0), "sent": m.sent, "rss_mb": [rss_mb(p.pid) for p in engines]})
                emit(memory[-1])
                next_sample = now + args.sample
            if m.sent + m.failed >= args.n or now - t0 > args.timeout:
                break
            if now >= next_stop:
                stops.append(one_stop(store, db, dots, len(engines), len(stops) + 1) | {"sent_before": m.sent})
                pause = rnd.uniform(*args.stopped_for)
                time.sleep(pause)
                subprocess.run([MAILCONSOLE, "--db", str(db), "resume", "--yes"], check=True, stdout=subprocess.DEVNULL)
                stopped_seconds += time.perf_counter() - now
                emit(stops[-1])
                next_stop = time.perf_counter() + rnd.uniform(*args.stop_every)
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
    finally:
        stop_engines(engines)
        recorder.terminate()
        recorder.wait()
    dots.new()
    m = get_mailing(store, mid)
    emit({
        "bench": "soak", "n": args.n, "engines": len(engines), "workers": args.workers,
        "seconds": round(seconds, 1), "stopped_seconds": round(stopped_seconds, 1),
        "rate_while_running": round((m.sent + m.failed) / max(seconds - stopped_seconds, 1e-9)),
        "stops": len(stops), "overshoot_total": sum(s["overshoot"] for s in stops),
        "all_acknowledged": all(s["all_acknowledged"] for s in stops),
        "ack_ms_max": max((s["ack_ms"] or 0 for s in stops), default=None),
        "rss_mb_max": max((max(s["rss_mb"]) for s in memory), default=None),
        "sent": m.sent, "failed": m.failed, "queued": m.queued, "in_flight": m.in_flight,
        "recovered": m.recovered, "accepted_by_recording_sink": dots.total,
        "sent_per_engine": {e.transport: e.sent_total for e in list_engines(store, include_gone=True)},
        "states": states(store), "counter_mismatches": len(mismatches(store)),
    })


if __name__ == "__main__":
    main()
