"""Recount the queue and compare it with the maintained counters.

The console never counts messages (DESIGN: counters are maintained, not
recounted); this module does, on purpose, so that tests, soaks and an operator
in doubt can prove the counters right. It scans the message table: do not call
it on every refresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from .connection import Store
from .mailings import DELETED
from .schema import mailings, messages

# Message state -> the mailing counter that counts it.
COUNTER_OF = {"queued": "queued", "claimed": "claimed", "sent": "sent", "failed": "failed", "suspended": "suspended",
              "suppressed": "suppressed"}


@dataclass(frozen=True)
class Mismatch:
    mailing_id: int
    counter: str
    maintained: int
    actual: int


def recount(store: Store) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]]:
    """(actual, maintained): per live mailing, counter name -> value, from one snapshot."""
    actual: dict[int, dict[str, int]] = {}
    maintained: dict[int, dict[str, int]] = {}
    with store.read() as conn:
        for row in conn.execute(select(mailings).where(mailings.c.status != DELETED)):
            maintained[row.id] = {c: getattr(row, c) for c in COUNTER_OF.values()}
            actual[row.id] = dict.fromkeys(COUNTER_OF.values(), 0)
        rows = conn.execute(
            select(messages.c.mailing_id, messages.c.state, func.count()).group_by(messages.c.mailing_id, messages.c.state)
        ).all()
    for mid, state, n in rows:
        if mid in actual:  # a deleted mailing's rows wait for the purge and count nowhere
            actual[mid][COUNTER_OF.get(state, state)] = n
    return actual, maintained


def mismatches(store: Store) -> list[Mismatch]:
    """Every counter that differs from the message states it stands for (empty: all right)."""
    actual, maintained = recount(store)
    out = []
    for mid, counts in actual.items():
        for counter, n in counts.items():
            if maintained[mid].get(counter) != n:
                out.append(Mismatch(mid, counter, maintained[mid].get(counter, 0), n))
    return out


def states(store: Store) -> dict[str, int]:
    """Messages per state over every live mailing."""
    actual, _ = recount(store)
    total: dict[str, int] = {}
    for counts in actual.values():
        for counter, n in counts.items():
            total[counter] = total.get(counter, 0) + n
    return total
