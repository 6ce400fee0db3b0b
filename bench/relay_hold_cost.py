"""What a hold of ~1,500 queue ids costs at a private Postfix, and where the time goes.

A private Postfix (tests/relay/postfix.py) with `defer_transports = smtp`, so
what it accepts stays in its queue; --n messages are submitted, then the
variants below are run in turns (paired: each round runs every variant once,
in a rotating order, on the same queue), each a hold of every id followed by a
release (not timed) to put them back:

    rename       the agent's hold (relay/postfix.py, as root): the rename postsuper
                 makes, done in the agent; its log lines by one postlog process after
    parallel4    up to 4 postsuper -h - processes (the agent's hold before)
    single       one postsuper -h -
    parallel8    up to 8 processes
    nolog        as parallel4, with the instance's log sent to syslog (there is none
                 here: postsuper's log lines go nowhere)

Median and max ms per variant, and per id.
"""

from __future__ import annotations

import argparse
import json
import shutil
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "relay"))

from postfix import NextHop, NextHopServer, PrivatePostfix, unavailable  # noqa: E402

from mailconsole.relay import postfix as relay_postfix  # noqa: E402
from mailconsole.relay.postfix import PostfixQueue  # noqa: E402


def submit(relay: PrivatePostfix, n: int) -> None:
    host, port = relay.relay.split(":")
    with smtplib.SMTP(host, int(port), timeout=60) as smtp:
        for i in range(n):
            smtp.sendmail("news@shop.example", [f"h{i}@example.net"], f"Subject: {i}\r\n\r\nHello\r\n")


def settings(relay: PrivatePostfix, **values: str) -> None:
    relay.command("postconf", "-e", *(f"{k}={v}" for k, v in values.items()))
    relay.command("postfix", "reload")
    time.sleep(1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--variants", default="rename,parallel4,single,parallel8,nolog")
    args = ap.parse_args()
    why = unavailable()
    if why:
        raise SystemExit(f"relay_hold_cost: {why}")
    work = Path(tempfile.mkdtemp(prefix="mc-hold-"))
    server = NextHopServer(NextHop())
    server.start()
    relay = PrivatePostfix(work / "postfix", server.port)
    relay.start()
    try:
        settings(relay, defer_transports="smtp")
        submit(relay, args.n)
        time.sleep(2)
        queue = PostfixQueue(str(relay.config))
        ids = [m["queue_id"] for m in relay.queue()]
        print(f"{len(ids)} queued", {q: sum(1 for m in relay.queue() if m['queue_name'] == q) for q in
                                    ("incoming", "active", "deferred", "hold")}, flush=True)
        variants = args.variants.split(",")
        times: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                relay_postfix.PARALLEL = {"single": 1, "parallel8": 8}.get(v, 4)
                if v == "nolog":
                    settings(relay, maillog_file="")
                started = time.perf_counter()
                done = queue.hold(ids) if v == "rename" else queue._postsuper("-h", ids)
                took = time.perf_counter() - started
                if v == "nolog":
                    settings(relay, maillog_file=str(relay.maillog))
                if len(done) < 0.95 * len(ids):
                    raise SystemExit(f"{v}: held only {len(done)} of {len(ids)}")
                times[v].append(took)
                queue.release(ids)
                print(json.dumps({"round": r, "variant": v, "ms": round(1000 * took, 1)}), flush=True)
        for v, t in times.items():
            print(json.dumps({"variant": v, "runs": len(t), "median_ms": round(1000 * statistics.median(t), 1),
                              "max_ms": round(1000 * max(t), 1),
                              "per_id_us": round(1e6 * statistics.median(t) / len(ids), 1)}), flush=True)
    finally:
        relay.cleanup()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
