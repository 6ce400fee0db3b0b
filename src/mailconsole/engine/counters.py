"""What one engine has done, in plain integers: read by a metrics scrape, never pushed.

The engine adds to these on its own thread as it records outcomes and passes the
gate; nothing here locks, allocates per message or calls a metrics library. An
exporter (mailconsole.ops.metrics) reads them when scraped: a torn read of a
counter that is being incremented is at worst one message behind.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from operator import attrgetter

from ..store.queue import Control, Outcome

# Upper bounds (seconds) of the buckets. The gate's read takes ~10 µs on a local
# SQLite store and a few ms on a busy one; the fence waits only while a stop holds it.
GATE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_MAILING_AND_KIND = attrgetter("mailing_id", "kind")
FENCE_BUCKETS = (0.000001, 0.00001, 0.0001, 0.001, 0.01, 0.1, 0.5, 1.0, 2.5)


class Timings:
    """A histogram as Prometheus keeps one: counts per bucket (`le` bounds) and a sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs as the exposition format wants them, +Inf last."""
        out, total = [], 0
        for bound, n in zip((*(repr(b) for b in self.bounds), "+Inf"), self.counts):
            total += n
            out.append((bound, total))
        return out


class GateTimings:
    """The gate's two waits: its fresh read (including the fence) and the fence alone."""

    def __init__(self) -> None:
        self.check = Timings(GATE_BUCKETS)
        self.fence = Timings(FENCE_BUCKETS)


class EngineCounters:
    """Counts since the engine started; account ids, not names (names are the store's)."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[int, str], int] = {}  # (account id, outcome kind) -> messages
        # Outcomes of mailings the gate's latest read no longer lists (finished, deleted just
        # then): (mailing id, kind) -> messages; the exporter finds their account in the store.
        self.unresolved: dict[tuple[int, str], int] = {}
        self.replies: dict[str, int] = {}  # "2xx" / "4xx" / "5xx" / "none" -> SMTP replies to a transaction
        # Mailings paused by the engine itself (a policy), per account: see Engine.automatic_pause.
        self.automatic_pauses: dict[int | None, int] = {}
        self.gate = GateTimings()

    def count(self, outcomes: Iterable[Outcome], control: Control | None) -> None:
        """One recorded batch: its outcomes by account (from the gate's latest read)."""
        statuses = control.mailing_status if control is not None else {}
        table = self.outcomes
        # Counted in C (a batch is mostly one mailing and one kind); the account per pair only.
        for (mailing_id, kind), n in Counter(map(_MAILING_AND_KIND, outcomes)).items():
            status = statuses.get(mailing_id)
            if status is None:
                self.unresolved[(mailing_id, kind)] = self.unresolved.get((mailing_id, kind), 0) + n
                continue
            key = (status[1], kind)
            table[key] = table.get(key, 0) + n

    def reply(self, code: int) -> None:
        """A reply that ended a transaction (0: none came, the connection was lost)."""
        key = f"{code // 100}xx" if 200 <= code < 600 else "none"
        self.replies[key] = self.replies.get(key, 0) + 1
