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


async def _slow_connection(stream, delay: float) -> None:  # type: ignore[no-untyped-def]
    import trio

    buf = bytearray()
    in_data = False
    try:
        await stream.send_all(b"220 slow sink ESMTP\r\n")
        while True:
            chunk = await stream.receive_some(1 << 16)
            if not chunk:
                return
            buf += chunk
            replies: list[bytes] = []
            while True:
                if in_data:
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        del buf[: max(0, len(buf) - 4)]  # keep a possible partial terminator
                        break
                    del buf[: end + 5]
                    in_data = False
                    if replies:
                        await stream.send_all(b"\r\n".join(replies) + b"\r\n")
                        replies = []
                    await trio.sleep(delay)  # the relay takes its time over each message
                    replies.append(b"250 2.0.0 Ok: queued as SLOW")
                    continue
                i = buf.find(b"\r\n")
                if i < 0:
                    break
                cmd = bytes(buf[:4]).upper()
                del buf[: i + 2]
                if cmd in (b"EHLO", b"HELO"):
                    replies.append(b"250-slow\r\n250 PIPELINING")
                elif cmd == b"DATA":
                    replies.append(b"354 go on")
                    in_data = True
                    buf[0:0] = b"\r\n"  # the body's first line follows this line end
                elif cmd == b"QUIT":
                    await stream.send_all(b"221 bye\r\n")
                    return
                else:
                    replies.append(b"250 ok")
            if replies:
                await stream.send_all(b"\r\n".join(replies) + b"\r\n")
    except Exception:  # a connection the engine dropped
        pass


def slow_sink(port: int, delay_ms: float) -> None:
    """The slow relay (run in its own process): accepts everything, each dot after delay_ms."""
    import trio

    async def serve() -> None:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1", backlog=1024)
        await trio.serve_listeners(lambda s: _slow_connection(s, delay_ms / 1000), listeners)

    trio.run(serve)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--slow-sink":  # the sink's own process
        slow_sink(int(sys.argv[2]), float(sys.argv[3]))
        return
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
        sink = subprocess.Popen([sys.executable, __file__, "--slow-sink", str(port), str(args.slow_relay)])
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
