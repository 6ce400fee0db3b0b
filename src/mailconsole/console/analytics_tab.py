"""Sent Analytics: every mailing with live counts, per-revision sent counts, and a filter."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, DataTable, Input, Static

from ..store.mailings import FAILED, PLANNED, PREPARING, SENDING, Mailing
from . import format as fmt
from .tables import LiveTable
from .view import LiveWidget, View

COLUMNS = (
    ("id", "ID", None),
    ("name", "Mailing", 16),
    ("status", "Status", None),
    ("recipients", "Rcpts", None),
    ("sent", "Sent", None),
    ("in_flight", "Fly", None),
    ("queued", "Queue", None),
    ("failed", "Fail", None),
    ("suspended", "Susp", None),
    ("rate", "/s", None),
)
# Left out at small sizes: the counts an operator acts on stay (sent, queue, fail).
COMPACT_DROP = ("recipients", "in_flight", "suspended", "rate")
HELD = "held"  # a sending mailing of a stopped account: nothing of it goes out


def planned_label(shown: bool) -> str:
    """The toggle's state in words, not only in the checkbox's colour."""
    return f"show planned also: {'yes' if shown else 'no'} (a)"


def status_text(m: Mailing, stopped: bool = False) -> Text:
    """The status as the operator must read it: a stopped account's sending mailings are held."""
    if stopped and m.status == SENDING:
        return Text(HELD, style="bold")
    if m.status == PREPARING:
        done = 100 * m.recipients // m.expected if m.expected else 0
        return Text(f"prep. {done}%")
    if m.status == FAILED:  # finished with not one message sent: must not pass for "sent"
        return Text(m.status, style="bold red")
    return Text(m.status)


def matches(m: Mailing, query: str) -> bool:
    q = query.casefold()
    return any(q in part.casefold() for part in (m.name, m.sender, m.status, str(m.id)))


def revision_line(view: View, mailing_id: int | None) -> Text:
    if view.snapshot is None or mailing_id is None:
        return Text("")
    m = view.snapshot.mailing(mailing_id)
    if m is None:
        return Text("")
    counts = view.snapshot.revisions.get(mailing_id)
    text = Text.assemble(fmt.plain(m.name, style="bold"), Text(": "))
    if counts is None:
        text.append("reading revisions…")
    elif not counts:
        text.append("no revisions")
    else:
        text.append(" · ".join(f"revision {n}: {fmt.count(sent)} sent" for n, sent in counts))
    if m.recovered:
        text.append(f" · {fmt.count(m.recovered)} possibly delivered twice (engine crash or lost reply)")
    return text


def empty_text(total: int, shown: int, query: str) -> str:
    """Why no row is shown: nothing exists, all are planned and hidden, or the filter matches none."""
    if total == 0:
        return "No mailings yet: create one with `mailconsole create`."
    if shown == 0:
        return f"No mailing sent or sending; {total:,} planned (a shows them)."
    return f"No mailing matches the filter '{fmt.visible(query)}' (esc clears)."


class MailingsTable(LiveTable):
    class Selected(Message):
        def __init__(self, mailing_id: int | None) -> None:
            super().__init__()
            self.mailing_id = mailing_id

    def __init__(self, **kwargs: object) -> None:
        super().__init__(COLUMNS, compact_drop=COMPACT_DROP, **kwargs)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value if event.row_key is not None else None
        self.post_message(self.Selected(int(key) if key is not None else None))


class AnalyticsTab(Vertical, LiveWidget):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._view: View | None = None
        self._asked: int | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="analytics-bar"):
            yield Checkbox(planned_label(False), id="show-planned")
            yield Input(placeholder="filter: name, sender, status…  (enter keeps, esc clears)", id="filter")
        yield MailingsTable(id="mailings")
        yield Static(id="revisions")

    @property
    def table(self) -> MailingsTable:
        return self.query_one(MailingsTable)

    @property
    def selected(self) -> int | None:
        key = self.table.selected_key
        return int(key) if key is not None else None

    @property
    def show_planned(self) -> bool:
        return self.query_one("#show-planned", Checkbox).value

    def toggle_planned(self) -> None:
        box = self.query_one("#show-planned", Checkbox)
        box.value = not box.value

    def open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        # Focus now, not via focus() (which is queued behind keys already typed): "/sale"
        # typed quickly must land in the filter, not trigger the table's keys.
        self.screen.set_focus(box)

    def close_filter(self, *, clear: bool) -> bool:
        """Returns True if there was something to back out of."""
        box = self.query_one("#filter", Input)
        had = box.display or bool(box.value)
        if clear:
            box.value = ""
            box.display = False
        self.table.focus()
        return had

    @on(Input.Submitted, "#filter")
    def _keep_filter(self) -> None:
        self.close_filter(clear=False)

    @on(Checkbox.Changed, "#show-planned")
    def _planned_toggled(self, event: Checkbox.Changed) -> None:
        event.checkbox.label = planned_label(event.value)
        self._redraw()

    @on(Input.Changed, "#filter")
    def _redraw(self) -> None:
        if self._view is not None:
            self.show(self._view)

    @on(MailingsTable.Selected)
    def _selected(self, event: MailingsTable.Selected) -> None:
        if self._view is not None:
            self.query_one("#revisions", Static).update(revision_line(self._view, event.mailing_id))

    def show(self, view: View) -> None:
        self._view = view
        if view.snapshot is None:
            return
        query = self.query_one("#filter", Input).value.strip()
        shown = [m for m in view.snapshot.mailings if self.show_planned or m.status != PLANNED]
        mailings = [m for m in shown if not query or matches(m, query)]
        # The stop holds every row at once, from its commit: no stale "sending" or rate.
        stopped = view.stopped
        rows = {
            str(m.id): (
                fmt.number(m.id), fmt.plain(m.name), status_text(m, stopped), fmt.number(m.recipients),
                fmt.number(m.sent), fmt.number(m.in_flight), fmt.number(m.queued), fmt.number(m.failed),
                fmt.number(m.suspended), Text(fmt.rate(0.0 if stopped else view.rates.of(m.id)), justify="right"),
            )
            for m in mailings
        }
        self.table.empty = empty_text(len(view.snapshot.mailings), len(shown), query)
        self.table.sync(rows, [str(m.id) for m in mailings])
        selected = self.selected
        self.query_one("#revisions", Static).update(revision_line(view, selected))
        if selected is not None and selected not in view.snapshot.revisions and selected != self._asked:
            # The selection moved without a highlight event (rows filtered away): ask for its
            # counts. Posted on this widget, not the table: Textual stops a message from
            # bubbling past the widget that sent it.
            self._asked = selected
            self.post_message(MailingsTable.Selected(selected))
