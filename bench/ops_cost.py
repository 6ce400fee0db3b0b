"""The cost of the operations features on the `null:` rate: paired runs, with and without.

Variants, run in rotating order in each round on the same machine and store size:
  base     the engine of another source tree (--base-src: the code before the
           feature, e.g. a `git worktree` of the commit before), no flags
  plain    this tree's engine, no flags (its counters are always kept); with
           --plain-policy-off the store's automatic pause and stop are turned off
  with     this tree's engine with --with-args (default: --metrics 127.0.0.1:0)
           and, when metrics are on, a scrape every --scrape-every seconds; the
           store's policy as it is by default (on)
Prints one JSON line per run and a summary: per variant the median steady rate and
the median CPU time of the engine process per message (from its first recorded
message to its last: start-up and idling excluded), and per round the ratios to
`base` (or to `plain` without --base-src). On a loaded machine the rate varies
with the neighbours; the CPU per message much less. Run with the project's Python:

    python bench/ops_cost.py --n 50000 --rounds 5 --base-src /path/to/tree-before
    python bench/ops_cost.py --with-args "--metrics 127.0.0.1:0 --policy-file p.toml"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import make_store, stop_engines
from mailconsole.store import policy
from mailconsole.store import Actor
from mailconsole.store.mailings import get_mailing

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(store, mailing_id: int, n: int, pid: int, timeout: float = 900.0) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(seconds to the end, messages/s and CPU µs a message from the first recorded to the last)."""
    t0 = time.perf_counter()
    first = None
    while time.perf_counter() - t0 < timeout:
        m = get_mailing(store, mailing_id)
        done = m.sent + m.failed
        now = time.perf_counter()
        if first is None and done > 0:
            first = (now, done, cpu_seconds(pid))
        if done >= n:
            assert first is not None
            cpu = cpu_seconds(pid) - first[2]
            return now - t0, (n - first[1]) / max(now - first[0], 1e-9), cpu * 1e6 / max(n - first[1], 1)
        time.sleep(0.02)
    raise TimeoutError(f"only {done} of {n} sent after {timeout}s")


def engine(db: Path, args: list[str], src: str | None) -> subprocess.Popen:
    env = dict(os.environ)
    if src:  # the other tree's package first on the path
        env["PYTHONPATH"] = str(Path(src) / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "mailconsole", "--db", str(db), "serve", "--quiet", "--workers", "16",
           "--batch", "500", "--transport", "null:", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=src or None)


def scraper(proc: subprocess.Popen, every: float, done: threading.Event, counts: list[int]) -> None:
    """Read the URL the engine prints, then scrape it until done (as Prometheus would, more often)."""
    assert proc.stdout is not None
    url = None
    for _ in range(5):
        line = proc.stdout.readline()
        if line.startswith("metrics at "):
            url = line.split()[-1]
            break
    while url and not done.wait(every):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                r.read()
            counts[0] += 1
        except OSError:
            pass


def run(kind: str, n: int, work: Path, args: list[str], src: str | None, every: float,
        policy_off: bool = False) -> dict:
    db = work / f"{kind}.db"
    store, mid = make_store(db, n, work)
    if policy_off:
        policy.set_values(store, Actor("bench"), {"auto_pause": "off", "auto_stop": "off"})
    proc = engine(db, args, src)
    done, scrapes = threading.Event(), [0]
    thread = None
    if "--metrics" in args:
        thread = threading.Thread(target=scraper, args=(proc, every, done, scrapes), daemon=True)
        thread.start()
    try:
        seconds, steady, cpu_us = measure(store, mid, n, proc.pid)
    finally:
        done.set()
        stop_engines([proc])
        store.close()
    return {"bench": "ops_cost", "variant": kind, "n": n, "seconds": round(seconds, 2), "rate": round(steady), "cpu_us_per_message": round(cpu_us, 1),
            "scrapes": scrapes[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--base-src", default=None, help="a source tree without the feature (its src/ is used)")
    ap.add_argument("--with-args", default="--metrics 127.0.0.1:0")
    ap.add_argument("--scrape-every", type=float, default=1.0)
    ap.add_argument("--plain-policy-off", action="store_true",
                    help="run `plain` with the automatic pause and stop off: `with` then adds the policy and --with-args")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mc-ops-cost-"))
    variants = {"plain": ([], None), "with": (shlex.split(args.with_args), None)}
    if args.base_src:
        variants = {"base": ([], args.base_src), **variants}
    names = list(variants)
    rates: dict[str, list[int]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # each variant in each position in turn
        for kind in order:
            flags, src = variants[kind]
            result = run(kind, args.n, work, flags, src, args.scrape_every,
                         policy_off=args.plain_policy_off and kind == "plain")
            result["round"] = r
            print(json.dumps(result), flush=True)
            rates[kind].append(result["rate"])
            cpu[kind].append(result["cpu_us_per_message"])
        time.sleep(0.5)
    ref = "base" if "base" in rates else "plain"
    ratios = {k: [round(v / b, 4) for v, b in zip(rates[k], rates[ref])] for k in names if k != ref}
    cpu_ratios = {k: [round(v / b, 4) for v, b in zip(cpu[k], cpu[ref])] for k in names if k != ref}
    print(json.dumps({"bench": "ops_cost", "summary": True, "reference": ref, "with_args": args.with_args,
                      "plain_policy_off": args.plain_policy_off,
                      "median_rate": {k: round(statistics.median(v)) for k, v in rates.items()},
                      "ratios_per_round": ratios,
                      "median_ratio": {k: statistics.median(v) for k, v in ratios.items()},
                      "median_cpu_us_per_message": {k: statistics.median(v) for k, v in cpu.items()},
                      "cpu_ratios_per_round": cpu_ratios,
                      "median_cpu_ratio": {k: statistics.median(v) for k, v in cpu_ratios.items()}}))


if __name__ == "__main__":
    main()
