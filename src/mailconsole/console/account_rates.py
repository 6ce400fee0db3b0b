"""Each account's sending rate, from its `sent` counter between two reads.

Engines report one rate for everything they send, whatever the account, so an
account's own rate can only come from its maintained counters: the growth of
its `sent` total from one read of every account (`status.all_accounts`) to the
next, smoothed as the per-mailing rates are (rates.py).

The meters and the banner show the engines' rate while the store has one
account (it is that account's, and known at once); with several, the engines'
total would show one account's sending on every other's screen, so they show
the account's own rate instead (`shown_rate`).
"""

from __future__ import annotations

from ..store.status import AccountSummary, sent_rates
from .live import Snapshot
from .rates import SMOOTHING


class AccountRates:
    def __init__(self) -> None:
        self._rates: dict[str, float] = {}
        self._last: tuple[float, list[AccountSummary]] | None = None

    def add(self, at: float, summaries: list[AccountSummary]) -> None:
        if self._last is not None:
            then, before = self._last
            if at <= then:
                return  # a frozen clock (tests) or a read out of order: keep what we had
            fresh = sent_rates(before, summaries, at - then)
            self._rates = {
                name: rate if name not in self._rates else SMOOTHING * rate + (1 - SMOOTHING) * self._rates[name]
                for name, rate in fresh.items()
            }
        self._last = (at, summaries)

    def of(self, account: str) -> float | None:
        """Messages per second, None until two reads have been compared."""
        return self._rates.get(account)


def shown_rate(snap: Snapshot, rates: AccountRates) -> float:
    """The rate the meters show for the snapshot's account (after `rates.add` of that snapshot)."""
    if len(snap.accounts) <= 1:
        return snap.overview.rate
    return rates.of(snap.account) or 0.0
