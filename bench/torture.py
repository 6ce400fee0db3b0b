"""Long torture: the reliability suite's random scenarios again and again, with new seeds.

Each run executes the crash torture (kill -9 of engines and of a console with an
embedded engine), stop under load and the SMTP fault server from
tests/reliability with its own TORTURE_SEED, and records whether every promise
held and what the scenario reported (kills, recovered, duplicates). A failing
seed is printed so that `TORTURE_SEED=<seed> pytest tests/reliability/...`
reproduces it. One JSON line per run, then a summary.

    python bench/torture.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = [
    "tests/reliability/test_crash_torture.py",
    "tests/reliability/test_stop_under_load.py",
    "tests/reliability/test_smtp_faults.py",
]


def run_once(seed: int, scenarios: list[str]) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:logging", "-p", "no:cacheprovider", *scenarios],
        cwd=ROOT, env={**os.environ, "TORTURE_SEED": str(seed)}, capture_output=True, text=True,
    )
    # The scenarios print one summary line each (kills, recovered, duplicates, faults).
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(("kills:", "seed", "end states:", "PROMISE"))]
    return {"seed": seed, "ok": done.returncode == 0, "seconds": round(time.perf_counter() - t0, 1),
            "report": lines, **({} if done.returncode == 0 else {"tail": done.stdout[-3000:]})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None, help="seed of the seeds (default: random)")
    ap.add_argument("--only", choices=["crash", "stop", "smtp"], default=None)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    scenarios = [s for s in SCENARIOS if args.only is None or args.only in s]
    results = []
    for _ in range(args.runs):
        results.append(run_once(rnd.randrange(1 << 30), scenarios))
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({
        "bench": "torture", "runs": len(results), "passed": sum(r["ok"] for r in results),
        "failed_seeds": [r["seed"] for r in results if not r["ok"]],
        "promise_1_missed_seeds": [r["seed"] for r in results if any("PROMISE 1 MISSED" in ln for ln in r["report"])],
        "seconds": round(sum(r["seconds"] for r in results), 1),
    }))


if __name__ == "__main__":
    main()
