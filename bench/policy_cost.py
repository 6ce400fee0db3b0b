"""The automatic pause's cost per message: one outcome into the policy's windows, on and off.

The engine calls Watch.add once per message (engine/runner.py `_observe`); this
times that call alone, for a success (the common case) and a refusal, with the
default policy and with both switches off. Prints one JSON line (ns per call).
Compare with the engine's whole `null:` path per message in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import timeit

from mailconsole.store.policy import Policy
from mailconsole.watch import OK, PERMANENT, Watch

N = 1_000_000


def per_call(policy: Policy, kind: int) -> float:
    w = Watch(policy)
    add = w.add
    seconds = min(timeit.repeat(lambda: add(3, 1, kind), number=N, repeat=5))
    return seconds / N * 1e9


def main() -> None:
    off = Policy(auto_pause=False, auto_stop=False)
    empty = min(timeit.repeat(lambda: None, number=N, repeat=5)) / N * 1e9
    print(json.dumps({
        "bench": "policy_cost", "unit": "ns per outcome", "call_overhead": round(empty),
        "success_on": round(per_call(Policy(), OK)), "success_off": round(per_call(off, OK)),
        # Judged at every refusal, never paused (that rule off): the window's whole work.
        "refusal_on": round(per_call(Policy(max_permanent=None, account_max_permanent=None), PERMANENT)),
    }))


if __name__ == "__main__":
    main()
