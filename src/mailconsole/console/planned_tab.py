"""Planned: mailings scheduled for later, with their time and a countdown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

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
COMPACT_DROP = ("at",)  # the line under the table still gives the time of the selected one
EMPTY = "No planned mailings."


def selected_line(view: View | None, mailing_id: int | None) -> Text:
    """The selected mailing's full name and time: the name column cuts long names."""
    if view is None or view.snapshot is None:
        return Text("")
    m = view.snapshot.mailing(mailing_id)
    if m is None:
        return Text("")
    text = Text.assemble(fmt.plain(m.name, style="bold"), Text(f" (mailing {m.id}): "))
    text.append(f"starts {fmt.clock_time(m.scheduled_at)}, {fmt.countdown(m.scheduled_at, view.now)}")
    return text


class PlannedTab(Vertical, LiveWidget):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._view: View | None = None

    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS, id="planned", empty=EMPTY, compact_drop=COMPACT_DROP)
        yield Static(id="planned-selected", classes="selected-line")
        yield Static("d delete · t change the time · e edit the template · p pause", classes="hint")

    @property
    def selected(self) -> int | None:
        key = self.query_one(LiveTable).selected_key
        return int(key) if key is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        line = selected_line(self._view, self.selected)
        box = self.query_one("#planned-selected", Static)
        box.update(line)
        box.display = bool(line)  # no empty bar under an empty table

    def show(self, view: View) -> None:
        self._view = view
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
        self._show_selected()
