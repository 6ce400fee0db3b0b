"""Audit: every operator action, newest first, as the store's append-only log holds it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from ..store.audit import AuditEntry
from . import format as fmt
from .tables import LiveTable
from .view import LiveWidget, View

COLUMNS = (
    ("at", "Time (UTC)", None),
    ("who", "Who", None),
    ("action", "Action", None),
    ("mailing", "Mailing", None),
    ("details", "Details", None),
)


def details(entry: AuditEntry) -> Text:
    return fmt.plain(", ".join(f"{k}={v}" for k, v in sorted(entry.details.items()) if v is not None))


def who(entry: AuditEntry) -> Text:
    return fmt.plain(f"{entry.actor}@{entry.ssh_client}" if entry.ssh_client else entry.actor)


class AuditTab(Vertical, LiveWidget):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS, id="audit")

    def show(self, view: View) -> None:
        if view.snapshot is None or view.snapshot.audit is None:
            return
        log = view.snapshot.audit
        rows = {
            str(e.id): (
                Text(fmt.clock_time(e.at, zone=False)), who(e), fmt.plain(e.action, style="bold"),
                fmt.number(e.mailing_id) if e.mailing_id is not None else Text(""), details(e),
            )
            for e in log
        }
        self.query_one(LiveTable).sync(rows, [str(e.id) for e in log])
