"""Rates the meters show, derived from successive snapshots.

The overall rate comes from the engines' heartbeats (each engine reports what it
sent in its last seconds). Per-mailing rates come from the difference of the
maintained `sent` counters between two reads, smoothed so one slow read does
not make the number jump.
"""

from __future__ import annotations

from collections import deque

from ..store.mailings import Mailing

HISTORY = 120  # samples kept for the sparkline: two minutes at one read a second
SMOOTHING = 0.5  # weight of the newest sample in the per-mailing average


class RateHistory:
    def __init__(self, size: int = HISTORY) -> None:
        self.samples: deque[float] = deque(maxlen=size)
        self.per_mailing: dict[int, float] = {}
        self._last: tuple[float, dict[int, int]] | None = None

    def add(self, at: float, overall: float, mailings: list[Mailing]) -> None:
        self.samples.append(overall)
        sent = {m.id: m.sent for m in mailings}
        if self._last is not None:
            then, before = self._last
            elapsed = at - then
            if elapsed <= 0:
                return  # a frozen clock (tests) or a read out of order: keep what we had
            rates: dict[int, float] = {}
            for mid, n in sent.items():
                fresh = max(0, n - before.get(mid, n)) / elapsed
                old = self.per_mailing.get(mid)
                rates[mid] = fresh if old is None else SMOOTHING * fresh + (1 - SMOOTHING) * old
            self.per_mailing = rates
        self._last = (at, sent)

    @property
    def now(self) -> float:
        return self.samples[-1] if self.samples else 0.0

    def of(self, mailing_id: int) -> float:
        return self.per_mailing.get(mailing_id, 0.0)

    def series(self) -> list[float]:
        """A new list each time: Textual's Sparkline redraws only on a new value."""
        return list(self.samples)
