"""The line under the state banner, on every screen, while an automatic pause or stop is not acknowledged.

The engine paused a mailing (or stopped the account) by itself: an operator
who was looking elsewhere must see it whatever tab or dialog is open, and it
stays until someone says they have (k, audited). Acknowledging only takes the
line away: the mailing stays paused, the account stopped.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..store.auto_pause import STOP, Trip
from . import format as fmt
from .view import LiveWidget, View

ACK_KEY = "k"
SHOWN = 2  # the newest ones in full; the rest counted


def trip_line(trip: Trip, now: float) -> Text:
    text = Text("⚠ AUTOMATIC STOP" if trip.kind == STOP else "⚠ AUTOMATIC PAUSE", style="bold")
    text.append(f" {fmt.clock_time(trip.at)} ({fmt.ago(trip.at, now)}): ")
    text.append(fmt.plain(trip.summary()))
    top = trip.figures.get("top_replies") or []
    if top:
        text.append(" · top reply: ")
        text.append(fmt.plain(f"{top[0].get('count', 0)}× {top[0].get('reply', '')}"))
    return text


def trips_text(trips: tuple[Trip, ...], now: float) -> Text:
    text = Text()
    for trip in reversed(trips[-SHOWN:]):  # the newest first
        if text:
            text.append("\n")
        text.append(trip_line(trip, now))
    more = len(trips) - SHOWN
    if more > 0:
        text.append(f"\n… and {more} more (mailconsole policy show)")
    text.append(f"\n{ACK_KEY}: acknowledge (the pause stays; p unpauses, R resumes)", style="bold")
    return text


class AutoPauseBanner(Static, LiveWidget):
    """Hidden (height 0) while nothing is open, so that show() keeps being called."""

    def show(self, view: View) -> None:
        trips = view.snapshot.trips if view.snapshot is not None else ()
        self.set_class(bool(trips), "-open")
        self.styles.height = "auto" if trips else 0
        self.update(trips_text(trips, view.now) if trips else "")
