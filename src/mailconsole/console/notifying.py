"""The console's stops and resumes, told to the notification hook (mailconsole.ops.notify).

Sent after the commit, and only queued: the hook runs on the notifier's own thread,
so the stop key's commit is never delayed by it. A failed notification is shown as
an error toast (and logged by the notifier).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ops.notify import RESUME, STOP, Event, Notifier
from ..store.accounts import AccountState, ResumePlan

if TYPE_CHECKING:
    from .app import MailConsole


def attach(app: "MailConsole", notifier: Notifier) -> None:
    """Failures show in the console while it runs."""

    def shown(problem: str | None) -> None:
        if problem is not None:
            app.call_from_thread(app.notify, problem, title="Notification failed", severity="error", markup=False)

    notifier.on_problem = shown


def stopped(app: "MailConsole", done: AccountState, reason: str) -> None:
    """Right after the stop's commit (on the stop's thread): queue the event."""
    if app.notifier is None:
        return
    counts: dict[str, int] = {"generation": done.generation}
    snapshot = app.snapshot  # the figures on screen: no store read on the stop's thread
    if snapshot is not None and snapshot.account == done.name:
        counts.update(snapshot.overview.queue)
    app.notifier.send(Event.by(app.actor, STOP, why=reason, account=done.name, counts=counts,
                               program="mailconsole console"))


def resumed(app: "MailConsole", account: str, plan: ResumePlan) -> None:
    if app.notifier is None:
        return
    app.notifier.send(Event.by(app.actor, RESUME, account=account, program="mailconsole console",
                               counts={"to_send": plan.to_send, "suspended": plan.to_suspend, "held": plan.held}))
