"""A mailing's detail view: who sends what and when, its live counters, every revision, the last errors.

Opened with Enter on a row of Sent Analytics or Planned, closed with Esc (the
row stays selected). The counters and the per-revision sent counts are live:
the app reads them with every snapshot for the mailing shown here (see
`MailConsole.selected_mailing`). The heavier reads (the revisions with their
texts, the last errors) run in a worker thread through `app.run_store`, again
whenever the counters say they changed (a new revision, more failures).

From here: the difference between two revisions (`c`; the one marked with `m`
against the one under the cursor, else the one under the cursor against the
one before it), the preview (`v`), a test send (`s`) and the export of who got
the revision under the cursor (`x`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from ..store import Store, StoreError
from ..store.mailing_detail import LastErrors, last_errors
from ..store.mailings import Mailing, get_mailing
from ..store.revisions import Revision, all_revisions
from . import format as fmt
from .analytics_tab import status_text
from .diffing import Parts, diff_text
from .export_dialog import ask_export
from .header import ConsoleHeader
from .keys import STOP_KEY
from .preview import PreviewScreen
from .tables import LiveTable
from .test_send_dialog import ask_test_send
from .view import LiveWidget, View

REVISION_COLUMNS = (
    ("mark", " ", 1),
    ("number", "Rev", None),
    ("saved", "Saved (UTC)", None),
    ("by", "By", None),
    ("sent", "Sent", None),
    ("subject", "Subject", None),
)
ERRORS_SHOWN = 5


@dataclass(frozen=True)
class DetailData:
    """What the worker thread reads for the view (counters come live from the snapshot instead)."""

    mailing: Mailing
    revisions: list[Revision]
    errors: LastErrors


def read_detail(store: Store, mailing_id: int, account: str) -> DetailData:
    """Blocking: from a worker thread."""
    return DetailData(get_mailing(store, mailing_id, account), all_revisions(store, mailing_id),
                      last_errors(store, mailing_id, account, limit=ERRORS_SHOWN))


def parts_of(rev: Revision) -> Parts:
    return Parts(rev.subject, rev.text_body, rev.html_body)


def summary_text(m: Mailing, subject: str | None, now: float, stopped: bool = False) -> Text:
    text = Text.assemble(Text(f"Mailing {m.id} "), Text(fmt.visible(m.name), style="bold"), "\n")
    text.append("From: ")
    text.append(fmt.visible(m.sender_display))
    text.append(" · Reply-To: " + (fmt.visible(m.reply_to) if m.reply_to else "none (replies go to the sender)"))
    text.append("\nSubject: ")
    text.append(fmt.visible(subject) if subject is not None else "reading…")
    text.append(f"\nScheduled {fmt.clock_time(m.scheduled_at)} ({fmt.countdown(m.scheduled_at, now)}) · status ")
    text.append(status_text(m))
    if stopped and m.unsent:
        text.append(" (held: the account is stopped)", style="bold")
    return text


def counters_text(m: Mailing) -> Text:
    pairs = (("recipients", m.recipients), ("sent", m.sent), ("in flight", m.in_flight), ("queued", m.queued),
             ("failed", m.failed), ("suspended", m.suspended), ("suppressed", m.suppressed))
    text = Text()
    for i, (label, n) in enumerate(pairs):
        if i:
            text.append(" · ")
        text.append(fmt.count(n), style="bold")
        text.append(f" {label}")
    if m.recovered:
        text.append(f" · {fmt.count(m.recovered)} possibly delivered twice")
    return text


def errors_text(errors: LastErrors | None) -> Text:
    if errors is None:
        return Text("Last errors: reading…")
    if not errors.errors:
        return Text("Last errors: none")
    of = "" if errors.complete else f" (among the latest {fmt.count(errors.scanned)} messages with an error)"
    text = Text(f"Last errors{of}:", style="bold")
    for e in errors.errors:
        text.append(f"\n{fmt.count(e.count):>7} × ")
        text.append(fmt.visible(e.text))
    return text


class DiffScreen(ModalScreen[None]):
    """Two revisions side by side as a unified diff of subject, text and HTML."""

    BINDINGS = [
        Binding("escape,q", "dismiss", "Back"),
        Binding(STOP_KEY, "app.emergency_stop", "STOP ALL", priority=True),
    ]

    def __init__(self, title: str, diff: Text) -> None:
        super().__init__()
        self._title = title
        self._diff = diff

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with VerticalScroll(id="diff"):
            yield Static(Text(self._title, style="bold"), id="diff-title")
            yield Static(self._diff, id="diff-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#diff").focus()


class DetailLive(Vertical, LiveWidget):
    """The parts of the view that follow every snapshot: summary, counters, per-revision sent counts."""

    def __init__(self, mailing_id: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mailing_id = mailing_id
        self.data: DetailData | None = None
        self.marked: int | None = None  # revision number marked for the diff
        self._read_for: tuple[int, int] | None = None  # (revisions, failed) the last read was asked for
        self._view: View | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="detail-summary")
        yield Static(id="detail-counters")
        yield Static("Revisions, newest first (m marks one, c compares)", classes="section-title")
        yield LiveTable(REVISION_COLUMNS, id="detail-revisions")
        yield Static(errors_text(None), id="detail-errors")

    @property
    def table(self) -> LiveTable:
        return self.query_one("#detail-revisions", LiveTable)

    def show(self, view: View) -> None:
        self._view = view
        live = view.snapshot.mailing(self.mailing_id) if view.snapshot is not None else None
        if live is None and view.snapshot is not None:
            # Every mailing not deleted is in the snapshot: this one was deleted meanwhile.
            self.query_one("#detail-counters", Static).update(
                Text(f"Mailing {self.mailing_id} was deleted: nothing of it is sent any more.", style="bold"))
            return
        m = live or (self.data.mailing if self.data is not None else None)
        if m is None:
            return
        newest = self.data.revisions[-1] if self.data is not None and self.data.revisions else None
        self.query_one("#detail-summary", Static).update(summary_text(m, newest.subject if newest else None, view.now,
                                                                      view.stopped))
        self.query_one("#detail-counters", Static).update(counters_text(m))
        live_counts = view.snapshot.revisions.get(self.mailing_id) if view.snapshot is not None else None
        self._sync_revisions(dict(live_counts or []))
        # Read again when a revision was added or more messages failed (new errors).
        count = len(live_counts) if live_counts is not None else None
        if self._read_for is None:
            self._read_for = (count, m.failed)
            self.reread()
            return
        known, failed = self._read_for
        known = count if known is None else known  # the first counts to arrive are no change
        if (count is not None and count != known) or m.failed != failed:
            self.reread()
        self._read_for = (count if count is not None else known, m.failed)

    def reread(self) -> None:
        app = self.app
        mid = self.mailing_id
        app.run_store(lambda: read_detail(app.store, mid, app.account), self._loaded,  # type: ignore[attr-defined]
                      self._failed)

    def _loaded(self, data: DetailData) -> None:
        if not self.is_attached:
            return  # closed while reading
        self.data = data
        self.query_one("#detail-errors", Static).update(errors_text(data.errors))
        if self._view is not None:
            self.show(self._view)

    def _failed(self, exc: StoreError) -> None:
        if not self.is_attached:
            return
        self.query_one("#detail-errors", Static).update(Text(fmt.visible(str(exc)), style="bold red"))

    def _sync_revisions(self, live: dict[int, int]) -> None:
        if self.data is None:
            return
        revs = list(reversed(self.data.revisions))
        rows = {
            str(r.number): (
                Text("*" if r.number == self.marked else ""), fmt.number(r.number), Text(fmt.clock_time(r.created_at, zone=False)),
                fmt.plain(r.created_by), fmt.number(live.get(r.number, r.sent)), fmt.plain(r.subject),
            )
            for r in revs
        }
        self.table.sync(rows, [str(r.number) for r in revs])

    def revision(self, number: int | None) -> Revision | None:
        if self.data is None or number is None:
            return None
        return next((r for r in self.data.revisions if r.number == number), None)

    @property
    def under_cursor(self) -> Revision | None:
        key = self.table.selected_key
        return self.revision(int(key)) if key is not None else None

    def toggle_mark(self) -> None:
        r = self.under_cursor
        if r is not None:
            self.marked = None if self.marked == r.number else r.number
            if self._view is not None:
                self.show(self._view)

    def pair_to_compare(self) -> tuple[Revision, Revision] | str:
        """(older, newer) to compare, or why there is no pair."""
        current = self.under_cursor
        if current is None:
            return "The revisions are still being read."
        other = self.revision(self.marked) if self.marked is not None else self.revision(current.number - 1)
        if other is None or other.number == current.number:
            return (f"Revision {current.number} is the only one." if self.marked is None
                    else "Move the cursor to another revision than the marked one.")
        return (other, current) if other.number < current.number else (current, other)


class DetailScreen(ModalScreen[None]):
    """Modal like the editor: the list's keys (d, p, q…) must not act behind it; the stop key still does."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("c", "diff", "Diff"),
        Binding("m", "mark", "Mark rev."),
        Binding("v", "preview", "Preview"),
        Binding("s", "test_send", "Test send…"),
        Binding("x", "export", "Export…"),
        Binding(STOP_KEY, "app.emergency_stop", "STOP ALL", priority=True),
    ]

    def __init__(self, mailing_id: int) -> None:
        super().__init__()
        self.mailing_id = mailing_id

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with VerticalScroll(id="detail"):
            yield DetailLive(self.mailing_id, id="detail-live")
        yield Footer()

    @property
    def live(self) -> DetailLive:
        return self.query_one(DetailLive)

    def on_mount(self) -> None:
        self.live.table.focus()
        self.app.refresh_views()  # type: ignore[attr-defined]
        self.app.poll()  # type: ignore[attr-defined]  # this mailing's per-revision counts, now

    def action_close(self) -> None:
        self.dismiss(None)

    def action_mark(self) -> None:
        self.live.toggle_mark()

    def action_diff(self) -> None:
        pair = self.live.pair_to_compare()
        if isinstance(pair, str):
            self.notify(pair)
            return
        old, new = pair
        a, b = f"revision {old.number}", f"revision {new.number}"
        title = f"Mailing {self.mailing_id}: {a} ({fmt.clock_time(old.created_at)}) against {b} ({fmt.clock_time(new.created_at)})"
        self.app.push_screen(DiffScreen(title, diff_text(parts_of(old), parts_of(new), a, b)))

    def action_preview(self) -> None:
        self.app.push_screen(PreviewScreen(self.mailing_id))

    def action_test_send(self) -> None:
        ask_test_send(self.app, self.mailing_id)  # type: ignore[arg-type]

    def action_export(self) -> None:
        """Who got the revision under the cursor (or, chosen in the dialog, who is still queued…)."""
        r = self.live.under_cursor
        if r is None:
            self.notify("The revisions are still being read.")
            return
        ask_export(self.app, self.mailing_id, r.number)  # type: ignore[arg-type]
