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
    ("at", "Time", None),
    ("who", "Who", None),
    ("ssh", "SSH client", None),
    ("action", "Action", None),
    ("mailing", "Mailing", None),
    ("details", "Details", None),
)
COMPACT_DROP = ("ssh", "details")
EMPTY = "No operator action recorded yet."
LOCAL = "local"  # the action was taken on the store's host, not over SSH


def details(entry: AuditEntry) -> Text:
    return fmt.plain(", ".join(f"{k}={v}" for k, v in sorted(entry.details.items()) if v is not None))


def when(entry: AuditEntry, now: float) -> Text:
    """Full UTC time, then how long ago: the questions are "exactly when" and "how recent"."""
    return Text(f"{fmt.clock_time(entry.at)} ({fmt.ago(entry.at, now)})")


class AuditTab(Vertical, LiveWidget):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS, id="audit", empty=EMPTY, compact_drop=COMPACT_DROP)

    def show(self, view: View) -> None:
        if view.snapshot is None or view.snapshot.audit is None:
            return
        log = view.snapshot.audit
        rows = {
            str(e.id): (
                when(e, view.now), fmt.plain(e.actor), fmt.plain(e.ssh_client or LOCAL),
                fmt.plain(e.action, style="bold"),
                fmt.number(e.mailing_id) if e.mailing_id is not None else Text(""), details(e),
            )
            for e in log
        }
        self.query_one(LiveTable).sync(rows, [str(e.id) for e in log])
