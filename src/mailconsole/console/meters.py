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
        rate = view.rates.now
        self.query_one("#rate-now", Label).update(f"{fmt.rate(rate)} msg/s")
        # Sparkline redraws on a new list only.
        self.query_one("#rate-history", Sparkline).data = view.rates.series() or [0.0]
        if view.snapshot is None:
            return
        totals = view.snapshot.overview.queue
        queued = totals["queued"]
        eta = "held by the stop" if view.stopped and queued else fmt.eta(queued, rate)
        self.query_one("#queue-eta", Label).update(
            f"queued {fmt.count(queued)} · in flight {fmt.count(totals['in_flight'])} · ETA {eta}"
        )
