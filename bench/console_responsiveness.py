"""Console responsiveness while the engine inside it sends at full rate.

Measures, with an embedded engine on the `null:` transport (no network: the
engine runs as fast as it can, which is the worst case for the UI thread):

* key press -> screen: from posting a key to the first frame written after the
  key was dispatched (tab switches and cursor moves, which redraw tables);
* stop key -> stop committed: from posting F2 to the return of the store's
  durable stop commit (`accounts.commit_stop`; the console passes the dot
  fence after it, on the commit's thread).

Engines: thread (trio.run on its own thread), guest (trio guest mode on the
console's asyncio loop), both started exactly as `mailconsole` starts them;
process (`mailconsole serve` beside the console); none (baseline).

Run:  .venv/bin/python bench/console_responsiveness.py [--recipients 200000] [--keys 200] [--stops 20] [--engine guest]
      [--postgresql]

--postgresql: the store is a database on a private PostgreSQL server (bench/pg_common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

from common import queue_mailing

from mailconsole.console import app as app_module
from mailconsole.console.app import MailConsole
from mailconsole.engine.config import EngineConfig
from mailconsole.console.launch import start_engine
from mailconsole.store import Actor, Store, accounts, status

ACTOR = Actor("bench")


def post_key(app: MailConsole, key: str) -> None:
    """Send one key as the terminal would, as Pilot.press does but without its waits.

    Pilot.press then waits until the process looks idle (up to 1 s, twice): with
    an engine busy in the process it never does, so every key would cost ~2 s and
    a million messages would be gone before the run ends. The measurement below
    waits for the key's own frame instead.
    """
    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def build_store(location: str, directory: Path, recipients: int) -> Store:
    store = Store(location)
    queue_mailing(store, directory, recipients, name="Full rate", text_body="Hi {{ first_name }}\n")
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

    real_stop = accounts.commit_stop
    queued_at_end: list[int] = []

    def timed_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_stop(*args, **kwargs)
        commits.append(time.perf_counter())
        return result

    # The console's once-a-second collector pass (app._collect_garbage), timed: a key
    # that comes during a pass waits for it, and a pass lasts as long as what it scans.
    passes: list[float] = []
    collect = app_module._collect_garbage

    def timed_collect() -> None:
        t = time.perf_counter()
        collect()
        passes.append(time.perf_counter() - t)

    app_module._collect_garbage = timed_collect  # type: ignore[assignment]  # looked up at mount

    app._display = timed_display  # type: ignore[method-assign]
    app._check_bindings = timed_check  # type: ignore[method-assign]
    app_module.accounts.commit_stop = timed_stop  # type: ignore[attr-defined]

    key_latency: list[float] = []
    pressed: list[str] = []
    dispatch_delay: list[float] = []
    stop_latency: list[float] = []
    rates: list[float] = []
    async with app.run_test(size=(120, 36)):  # keys are posted directly (post_key), not by Pilot
        await asyncio.sleep(2.0)  # the engine reaches full rate
        sent_before, started = status.overview(store).queue["sent"], time.perf_counter()
        # Every key changes what is on screen (a key that changes nothing paints nothing).
        cycle = ["2", "a", "3", "4", "1", "question_mark", "escape", "2", "a", "slash", "escape", "1"]
        for i in range(keys):
            key = cycle[i % len(cycle)]
            t0 = time.perf_counter()
            n = len(dispatched)
            post_key(app, key)
            while len(dispatched) <= n:
                await asyncio.sleep(0.001)
            handled = dispatched[n]
            while not frames or frames[-1] < handled:
                if time.perf_counter() - t0 > 5:  # pragma: no cover
                    raise RuntimeError(f"key {key!r} (#{i}) painted nothing within 5 s")
                await asyncio.sleep(0.001)
            first = next(f for f in frames if f >= handled)
            key_latency.append(first - t0)
            pressed.append(key)
            dispatch_delay.append(handled - t0)
            await asyncio.sleep(0.02)
            if i % 25 == 0:
                print(f"  key {i}: {key_latency[-1] * 1000:.0f} ms", flush=True)
        rates.append((status.overview(store).queue["sent"] - sent_before) / (time.perf_counter() - started))
        queued_at_end.append(status.overview(store).queue["queued"])
        print(f"keys took {time.perf_counter() - started:.1f} s; still queued after them: {queued_at_end[-1]:,}")
        for _ in range(stops):
            await asyncio.sleep(1.0)  # sending at full rate again
            n = len(commits)
            t0 = time.perf_counter()
            post_key(app, "f2")
            while len(commits) <= n:
                await asyncio.sleep(0.0005)
            stop_latency.append(commits[n] - t0)
            await asyncio.sleep(0.3)
            accounts.resume(store, ACTOR)
        queued_at_end.append(status.overview(store).queue["queued"])
    print(f"still queued at the end (must be > 0, or the engine idled): {queued_at_end[-1]:,}")
    app_module._collect_garbage = collect  # type: ignore[assignment]
    if passes:
        first, last = passes[: len(passes) // 4 or 1], passes[-(len(passes) // 4 or 1):]
        print(f"collector passes: n={len(passes)}, median {statistics.median(passes) * 1000:.1f} ms, "
              f"max {max(passes) * 1000:.1f} ms; first quarter median {statistics.median(first) * 1000:.1f} ms, "
              f"last quarter median {statistics.median(last) * 1000:.1f} ms; "
              f"objects tracked at the end {len(gc.get_objects()):,}")
    accounts.commit_stop = real_stop  # type: ignore[assignment]
    by_key: dict[str, list[float]] = {}
    for key, took in zip(pressed, key_latency):
        by_key.setdefault(key, []).append(took * 1000)
    print("key press -> screen by key (median / max ms): " + ", ".join(
        f"{k} {statistics.median(v):.0f}/{max(v):.0f}" for k, v in sorted(by_key.items())))
    return {"key": key_latency, "dispatch": dispatch_delay, "stop": stop_latency, "rate": rates,
            "queued": [float(q) for q in queued_at_end]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--engine", choices=("thread", "guest", "process", "none"), default="thread",
                        help="thread: inside the console on its own thread (default); guest: inside the "
                             "console as a trio guest on its loop; process: `mailconsole serve` beside it; "
                             "none: baseline")
    parser.add_argument("--postgresql", action="store_true", help="the store on a private PostgreSQL server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        location = str(Path(tmp) / "bench.db")
        if args.postgresql:
            from pg_common import postgresql

            location = stack.enter_context(postgresql()).create_database("bench")
        t = time.perf_counter()
        store = build_store(location, Path(tmp), args.recipients)
        print(f"store with {args.recipients:,} queued built in {time.perf_counter() - t:.1f} s")
        engine = server = None
        if args.engine in ("thread", "guest"):
            # Started as the console starts it (launch.start_engine), GIL setting included;
            # a guest engine starts once the app's loop runs (on_mount) and stops on unmount.
            engine = start_engine(store, EngineConfig(transport="null:", workers=args.workers), mode=args.engine)
        elif args.engine == "process":
            server = subprocess.Popen(
                [sys.executable, "-m", "mailconsole", "--db", location, "serve",
                 "--transport", "null:", "--workers", str(args.workers), "--quiet"],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        app = MailConsole(store, actor=ACTOR, engine=engine, poll_interval=0.5, freeze_heap=True)  # as launched
        try:
            results = asyncio.run(measure(app, store, args.keys, args.stops))
        finally:
            if engine is not None:
                engine.stop()
            if server is not None:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
        store.close()
    ms = {k: [v * 1000 for v in vs] for k, vs in results.items() if k not in ("rate", "queued")}
    print(f"engine throughput while keys were pressed: {results['rate'][0]:,.0f} msg/s")
    for name, label, target in (("key", "key press -> screen", 100), ("dispatch", "  of which key -> dispatched", 100),
                                ("stop", "stop key -> stop committed", 20)):
        v = ms[name]
        print(f"{label}: n={len(v)} median {statistics.median(v):.1f} ms, p95 {percentile(v, 95):.1f} ms, "
              f"max {max(v):.1f} ms (target p95 < {target} ms)")
    ok = percentile(ms["key"], 95) < 100 and percentile(ms["stop"], 95) < 20
    if args.engine != "none" and min(results["queued"]) == 0:
        print("INVALID: the queue ran dry, so the engine idled during the measurement; use more --recipients")
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
