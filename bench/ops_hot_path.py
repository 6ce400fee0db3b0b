"""What the metrics add per message on the engine's own thread, measured in-process.

The engine's extra work for metrics is: one dict increment per recorded outcome
(EngineCounters.count, per batch), and per gate check three perf_counter() calls and
two histogram observations. Timed here in isolation (best of 7), so the figure does
not depend on what else the machine runs; compare with the engine's CPU per message.

    python bench/ops_hot_path.py
"""

from __future__ import annotations

import json
import time
import timeit

from mailconsole.engine.counters import EngineCounters
from mailconsole.store.queue import Control, Outcome

BATCH = 500


def main() -> None:
    counters = EngineCounters()
    control = Control({1: 0}, frozenset(), {m: ("sending", 1) for m in range(10)})
    outcomes = [Outcome(i, i % 10, "sent", 1) for i in range(BATCH)]
    per_outcome = min(timeit.repeat(lambda: counters.count(outcomes, control), number=200, repeat=7)) / (200 * BATCH)

    gate = counters.gate

    def check() -> None:  # what Gate._fresh_held adds around the fence and the read
        began = time.perf_counter()
        held = time.perf_counter()
        gate.fence.observe(held - began)
        gate.check.observe(time.perf_counter() - began)

    per_check = min(timeit.repeat(check, number=100_000, repeat=7)) / 100_000
    print(json.dumps({"bench": "ops_hot_path", "count_ns_per_outcome": round(per_outcome * 1e9, 1),
                      "gate_timing_ns_per_check": round(per_check * 1e9, 1),
                      "smtp_path_ns_per_message": round((per_outcome + per_check) * 1e9, 1),
                      "null_path_ns_per_message": round((per_outcome + per_check / 16) * 1e9, 1)}))


if __name__ == "__main__":
    main()
