"""Throughput at a glance: messages/s now, the last minutes as a sparkline, queue and ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline

from . import format as fmt
from .view import LiveWidget, View


class Meters(Horizontal, LiveWidget):
    def compose(self) -> ComposeResult:
        yield Label("0 msg/s", id="rate-now")
        yield Sparkline([], id="rate-history")
        yield Label("", id="queue-eta")

    def show(self, view: View) -> None:
        # From the stop's commit on, nothing new goes out: the last read's rate is history.
        rate = 0.0 if view.stopped else view.rates.now
        self.query_one("#rate-now", Label).update(f"{fmt.rate(rate)} msg/s")
        # Sparkline redraws on a new list only.
        self.query_one("#rate-history", Sparkline).data = view.rates.series() or [0.0]
        if view.snapshot is None:
            return
        totals = view.snapshot.overview.queue
        queued = totals["queued"]
        eta = "held by the stop" if view.stopped and queued else fmt.eta(queued, rate)
        self.query_one("#queue-eta", Label).update(
            f"queued {fmt.count(queued)} · {in_flight(totals['in_flight'], view.stopped)} · ETA {eta}"
        )


def in_flight(n: int, stopped: bool) -> str:
    """After a stop, what is still in flight is draining (going back to the queue or out), not sending."""
    if stopped and n:
        return f"in flight {fmt.count(n)} draining"
    return f"in flight {fmt.count(n)}"
