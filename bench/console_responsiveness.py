"""Console responsiveness while the engine inside it sends at full rate.

Measures, with an embedded engine on the `null:` transport (no network: the
engine runs as fast as it can, which is the worst case for the UI thread):

* key press -> screen: from posting a key to the first frame written after the
  key was dispatched (tab switches and cursor moves, which redraw tables);
* stop key -> stop committed: from posting F2 to the return of the store's
  durable stop commit.

Run:  .venv/bin/python bench/console_responsiveness.py [--recipients 200000] [--keys 200] [--stops 20]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailconsole.console import app as app_module
from mailconsole.console.app import MailConsole
from mailconsole.engine.config import EngineConfig
from mailconsole.console.launch import start_engine
from mailconsole.store import Actor, Store, accounts, importer, status

ACTOR = Actor("bench")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def build_store(directory: Path, recipients: int) -> Store:
    store = Store(str(directory / "bench.db"))
    csv = directory / "recipients.csv"
    with csv.open("w") as f:
        f.write("email,first_name\n")
        for i in range(recipients):
            f.write(f"r{i}@example.org,N{i}\n")
    importer.create_mailing(store, ACTOR, name="Full rate", sender="bench@example.com",
                            subject="Hello {{ first_name }}", text_body="Hi {{ first_name }}\n",
                            html_body=None, recipients=csv)
    return store


async def measure(app: MailConsole, store: Store, keys: int, stops: int) -> dict[str, list[float]]:
    frames: list[float] = []
    dispatched: list[float] = []
    commits: list[float] = []

    display = app._display

    def timed_display(screen, renderable):  # type: ignore[no-untyped-def]
        display(screen, renderable)
        frames.append(time.perf_counter())

    check = app._check_bindings

    async def timed_check(key: str, priority: bool = False) -> bool:
        dispatched.append(time.perf_counter())
        return await check(key, priority)

    real_stop = accounts.stop
    queued_at_end: list[int] = []

    def timed_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_stop(*args, **kwargs)
        commits.append(time.perf_counter())
        return result

    app._display = timed_display  # type: ignore[method-assign]
    app._check_bindings = timed_check  # type: ignore[method-assign]
    app_module.accounts.stop = timed_stop  # type: ignore[attr-defined]

    key_latency: list[float] = []
    dispatch_delay: list[float] = []
    stop_latency: list[float] = []
    rates: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:  # noqa: SIM117
        await asyncio.sleep(2.0)  # the engine reaches full rate
        sent_before, started = status.overview(store).queue["sent"], time.perf_counter()
        # Every key changes what is on screen (a key that changes nothing paints nothing).
        cycle = ["2", "a", "3", "4", "1", "question_mark", "escape", "2", "a", "slash", "escape", "1"]
        for i in range(keys):
            t0 = time.perf_counter()
            n = len(dispatched)
            await pilot.press(cycle[i % len(cycle)])  # returns once the key is processed
            key = cycle[i % len(cycle)]
            while len(dispatched) <= n:
                await asyncio.sleep(0.001)
            handled = dispatched[n]
            while not frames or frames[-1] < handled:
                if time.perf_counter() - t0 > 5:  # pragma: no cover
                    raise RuntimeError(f"key {key!r} (#{i}) painted nothing within 5 s")
                await asyncio.sleep(0.001)
            first = next(f for f in frames if f >= handled)
            key_latency.append(first - t0)
            dispatch_delay.append(handled - t0)
            await asyncio.sleep(0.02)
            if i % 25 == 0:
                print(f"  key {i}: {key_latency[-1] * 1000:.0f} ms", flush=True)
        rates.append((status.overview(store).queue["sent"] - sent_before) / (time.perf_counter() - started))
        for _ in range(stops):
            await asyncio.sleep(1.0)  # sending at full rate again
            n = len(commits)
            t0 = time.perf_counter()
            await pilot.press("f2")
            while len(commits) <= n:
                await asyncio.sleep(0.0005)
            stop_latency.append(commits[n] - t0)
            await asyncio.sleep(0.3)
            accounts.resume(store, ACTOR)
        queued_at_end.append(status.overview(store).queue["queued"])
    print(f"still queued at the end (must be > 0, or the engine idled): {queued_at_end[0]:,}")
    accounts.stop = real_stop  # type: ignore[assignment]
    return {"key": key_latency, "dispatch": dispatch_delay, "stop": stop_latency, "rate": rates}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--engine", choices=("thread", "process", "none"), default="thread",
                        help="thread: inside the console, as `mailconsole` starts it (default); "
                             "process: `mailconsole serve` beside it; none: baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = build_store(Path(tmp), args.recipients)
        print(f"store with {args.recipients:,} queued built in {time.perf_counter() - t:.1f} s")
        engine = server = None
        if args.engine == "thread":
            # Started as the console starts it (launch.start_engine), GIL setting included.
            engine = start_engine(store, EngineConfig(transport="null:", workers=args.workers))
        elif args.engine == "process":
            server = subprocess.Popen(
                [sys.executable, "-m", "mailconsole", "--db", str(Path(tmp) / "bench.db"), "serve",
                 "--transport", "null:", "--workers", str(args.workers), "--quiet"],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        app = MailConsole(store, actor=ACTOR, engine=engine, poll_interval=0.5)
        try:
            results = asyncio.run(measure(app, store, args.keys, args.stops))
        finally:
            if engine is not None:
                engine.stop()
            if server is not None:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
        store.close()
    ms = {k: [v * 1000 for v in vs] for k, vs in results.items() if k != "rate"}
    print(f"engine throughput while keys were pressed: {results['rate'][0]:,.0f} msg/s")
    for name, label, target in (("key", "key press -> screen", 100), ("dispatch", "  of which key -> dispatched", 100),
                                ("stop", "stop key -> stop committed", 20)):
        v = ms[name]
        print(f"{label}: n={len(v)} median {statistics.median(v):.1f} ms, p95 {percentile(v, 95):.1f} ms, "
              f"max {max(v):.1f} ms (target p95 < {target} ms)")
    ok = percentile(ms["key"], 95) < 100 and percentile(ms["stop"], 95) < 20
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
