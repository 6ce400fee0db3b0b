"""What the resume dialog says: per mailing, what a resume sends now, suspends and leaves held.

A single total ("20,000 will be sent") once counted a paused mailing's queue as
going out. So the dialog lists the mailings themselves, with the revision their
unsent messages get, and totals that add up to the rows (and to the rows left
off, which "and N more" names).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..store.accounts import MailingPlan, ResumePlan
from . import format as fmt

# Rows shown before "and N more": the dialog, with its header and buttons, still fits 80x24.
MAX_ROWS = 5


def summary(plan: ResumePlan) -> str:
    return (f"{fmt.count(plan.to_send)} will be sent now, {fmt.count(plan.to_suspend)} suspended by the "
            f"7-day rule, {fmt.count(plan.held)} held.")


def _row(table: Table, m: MailingPlan) -> None:
    table.add_row(str(m.id), fmt.plain(m.name), m.status, "-" if m.revision is None else str(m.revision),
                  fmt.count(m.to_send), fmt.count(m.to_suspend), fmt.count(m.held))


def plan_table(plan: ResumePlan, max_rows: int = MAX_ROWS) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_footer=True, expand=True)
    table.add_column("Id", justify="right", footer="")
    table.add_column("Mailing", ratio=1, no_wrap=True, overflow="ellipsis", footer="Total")
    table.add_column("Status", footer="")
    table.add_column("Rev", justify="right", footer="")
    table.add_column("Send now", justify="right", footer=fmt.count(plan.to_send))
    table.add_column("7-day", justify="right", footer=fmt.count(plan.to_suspend))
    table.add_column("Held", justify="right", footer=fmt.count(plan.held))
    # Either every row, or one fewer and the "and N more" line: never more lines than max_rows.
    shown = plan.mailings if len(plan.mailings) <= max_rows else plan.mailings[:max_rows - 1]
    for m in shown:
        _row(table, m)
    if len(shown) < len(plan.mailings):
        table.add_row("", Text(f"and {len(plan.mailings) - len(shown)} more (in the totals)", style="italic"),
                      "", "", "", "", "")
    return table


def resume_body(plan: ResumePlan, max_rows: int = MAX_ROWS) -> RenderableType:
    head = Text(summary(plan), style="bold")
    if not plan.mailings:
        return Group(head, Text("\nNothing is queued: the account simply runs again."))
    notes = Text("\nRev: the revision the unsent messages get. 7-day: became due over 7 days ago; "
                 "suspended, visible, requeue with u. Held: paused, planned or preparing mailings "
                 "keep their messages queued.")
    return Group(head, Text(""), plan_table(plan, max_rows), notes)
