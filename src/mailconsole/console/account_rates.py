"""Each account's sending rate, from its `sent` counter between two reads.

Engines report one rate for everything they send, whatever the account, so an
account's own rate can only come from its maintained counters: the growth of
its `sent` total from one read of every account (`status.all_accounts`) to the
next, smoothed as the per-mailing rates are (rates.py).
"""

from __future__ import annotations

from ..store.status import AccountSummary
from .rates import SMOOTHING


class AccountRates:
    def __init__(self) -> None:
        self._rates: dict[str, float] = {}
        self._last: tuple[float, dict[str, int]] | None = None

    def add(self, at: float, summaries: list[AccountSummary]) -> None:
        sent = {a.name: a.sent for a in summaries}
        if self._last is not None:
            then, before = self._last
            elapsed = at - then
            if elapsed <= 0:
                return  # a frozen clock (tests) or a read out of order: keep what we had
            rates: dict[str, float] = {}
            for name, n in sent.items():
                # A deleted mailing takes its sent count with it: never a negative rate.
                fresh = max(0, n - before.get(name, n)) / elapsed
                old = self._rates.get(name)
                rates[name] = fresh if old is None else SMOOTHING * fresh + (1 - SMOOTHING) * old
            self._rates = rates
        self._last = (at, sent)

    def of(self, account: str) -> float | None:
        """Messages per second, None until two reads have been compared."""
        return self._rates.get(account)
