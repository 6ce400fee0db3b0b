"""CPU time per message: the engine, smtp-source and smtp-sink, in one run.

Throughput ratios on a shared 2-core machine mix two things: how much work a
message costs, and how much of the machine each side got. This measures the
first directly, as CPU seconds (user + system) per message:

* smtp-source -> smtp-sink: the C load generator and the sink;
* the engine -> smtp-sink, one process: the engine (every thread) and the sink;
* the engine -> null: the engine alone, with no network at all.

From these it derives a ceiling for any engine on this machine: it must do at
least what the null: engine does (claim, personalise, build, record) plus at
least what smtp-source does (the SMTP conversation itself, in C, and nothing
else), and the sink must take the message. With every core busy and shared
perfectly, no engine can go faster than

    cores / (null: engine + smtp-source + cheaper sink) per message,

and when that is below smtp-source's own ceiling (its CPU plus the sink's, per
message), matching smtp-source here is out of reach for any design that keeps
the engine's work.

Run: .venv/bin/python bench/cpu_budget.py --port PORT --sink-pid PID [--n 50000]
(bench/run.sh starts smtp-sink and passes both.)

A change is measured with `--before DIR` (DIR: the `src` directory of a checkout
of the code before it): each engine row is then run for both versions in turn,
`--rounds` times, in the same run, so that both meet the same load.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from common import make_store, sent_timings, start_engines

SIZE = 2300  # bytes per message, as the engine builds them


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def smtp_source(n: int, port: int, sink_pid: int) -> dict:
    sink0, own0, t0 = process_cpu(sink_pid), children_cpu(), time.perf_counter()
    subprocess.run(["smtp-source", "-d", "-s", "16", "-m", str(n), "-l", str(SIZE),
                    "-f", "bench@example.com", "-t", "sink@example.com", f"127.0.0.1:{port}"], check=True)
    seconds = time.perf_counter() - t0
    return {"sender": "smtp-source", "rate": round(n / seconds),
            "sender_us": round((children_cpu() - own0) / n * 1e6, 1),
            "sink_us": round((process_cpu(sink_pid) - sink0) / n * 1e6, 1)}


def engine(n: int, transport: str, work: Path, sink_pid: int | None, source: str | None = None) -> dict:
    """One engine process's run; `source`: the package directory to run it from (see --before)."""
    db = work / "cpu.db"
    store, mid = make_store(db, n, work)
    sink0 = process_cpu(sink_pid) if sink_pid else 0.0
    saved = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = source
    try:
        [proc] = start_engines(db, 1, 16, transport, ["--batch", "500"])  # as throughput.py
    finally:
        if source is not None:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
    seconds, steady = sent_timings(store, mid, n)
    sink_us = (process_cpu(sink_pid) - sink0) / n * 1e6 if sink_pid else 0.0
    proc.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(proc.pid, 0)  # the engine's own CPU, every thread, start-up included
    proc.returncode = 0
    return {"sender": f"engine {transport.split(':')[0]}" + (" (before)" if source else ""), "rate": round(n / seconds), "rate_after_start": round(steady),
            "sender_us": round((usage.ru_utime + usage.ru_stime) / n * 1e6, 1), "sink_us": round(sink_us, 1)}


def compile_package(source: str | None) -> None:
    """Byte-compile the package the engine runs from, as installing it does.

    Otherwise, where PYTHONDONTWRITEBYTECODE is set or the tree is read-only,
    every engine process compiles its ~80 modules from source at start-up
    (0.07-0.1 s of CPU here), which no installed engine does.
    """
    import mailconsole

    package = Path(source) / "mailconsole" if source else Path(mailconsole.__file__).parent
    compileall.compile_dir(str(package), quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="smtp-sink's port")
    ap.add_argument("--sink-pid", type=int, required=True, help="smtp-sink's process id (its CPU is read from /proc)")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--work", default=None)
    ap.add_argument("--before", default=None, help="src directory of the code before a change: run both, in turn")
    ap.add_argument("--rounds", type=int, default=1, help="with --before: pairs of runs per transport")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    compile_package(None)
    if args.before:
        compile_package(args.before)
    rows = [
        smtp_source(args.n, args.port, args.sink_pid),
        engine(args.n, f"smtp://127.0.0.1:{args.port}", work, args.sink_pid),
        engine(args.n, "null:", work, None),
    ]
    if args.before:
        before = str(Path(args.before).resolve())
        for _ in range(args.rounds):
            for transport, sink in ((f"smtp://127.0.0.1:{args.port}", args.sink_pid), ("null:", None)):
                rows.append(engine(args.n, transport, work, sink, before))
                rows.append(engine(args.n, transport, work, sink))
    source, smtp, null = rows[:3]
    for row in rows:  # this sender's own ceiling, for comparison with its measured rate
        row["ceiling"] = round(cores * 1e6 / (row["sender_us"] + row["sink_us"]))
    floor_us = null["sender_us"] + source["sender_us"] + min(source["sink_us"], smtp["sink_us"])
    ceiling = round(cores * 1e6 / floor_us)
    print(json.dumps({
        "bench": "cpu-budget", "n": args.n, "cores": cores, "rows": rows,
        "engine_floor_us": round(floor_us, 1), "engine_ceiling": ceiling,
        # Ceiling against ceiling: both as if they had the machine to themselves, so
        # the ratio does not depend on how busy the machine was during the run.
        "smtp_source_ceiling": source["ceiling"], "best_possible_ratio": round(ceiling / source["ceiling"], 2),
        "engine_smtp_us_over_floor": round(smtp["sender_us"] + smtp["sink_us"] - floor_us, 1),
    }))


if __name__ == "__main__":
    main()
