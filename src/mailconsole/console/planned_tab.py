"""Planned: mailings scheduled for later, with their time and a countdown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from . import format as fmt
from .tables import LiveTable
from .view import LiveWidget, View

COLUMNS = (
    ("id", "ID", None),
    ("name", "Mailing", 24),
    ("at", "Scheduled", None),
    ("countdown", "Starts", None),
    ("recipients", "Rcpts", None),
)


class PlannedTab(Vertical, LiveWidget):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS, id="planned")
        yield Static("d delete · t change the time · e edit the template · p pause", classes="hint")

    @property
    def selected(self) -> int | None:
        key = self.query_one(LiveTable).selected_key
        return int(key) if key is not None else None

    def show(self, view: View) -> None:
        if view.snapshot is None:
            return
        planned = view.snapshot.planned
        rows = {
            str(m.id): (
                fmt.number(m.id), fmt.plain(m.name), Text(fmt.clock_time(m.scheduled_at)),
                Text(fmt.countdown(m.scheduled_at, view.now)), fmt.number(m.recipients),
            )
            for m in planned
        }
        self.query_one(LiveTable).sync(rows, [str(m.id) for m in planned])
