"""Actions on one mailing: delete, pause/unpause, requeue (suspended or failed), change the time, edit the template.

A mixin of the app: each action checks read-only, picks the selected mailing,
asks where a mistake would cost (delete), and runs the store call in a worker
thread through `run_store`. Anything that stops sending nudges the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text

from ..store import StoreBusy, StoreError, mailings, revisions
from ..store.mailings import PAUSED, PLANNED
from . import format as fmt
from .diffing import Parts
from .editor import TemplateEditor
from .modals import ConfirmScreen, TimeScreen

if TYPE_CHECKING:
    from textual.widgets import TabbedContent

    from ..store import Actor, Store
    from .live import Snapshot


class MailingActions:
    # Provided by the app.
    store: Store
    account: str
    actor: Actor
    snapshot: Snapshot | None
    tabs: TabbedContent
    selected_mailing: Any
    run_store: Any
    notify: Any
    push_screen: Any
    _refuse_read_only: Any
    _nudge: Any
    _from_thread: Any

    def _mailing_for(self, what: str, action: str) -> int | None:
        """The selected mailing to `what`, or None, with the reason told: a read-only
        console refuses `action`, the wrong tab, nothing selected."""
        if self._refuse_read_only(action):
            return None
        if self.tabs.active not in ("analytics", "planned"):
            self.tabs.active = "analytics"
            self.notify(f"Select the mailing to {what} here, then press the key again.")
            return None
        mid = self.selected_mailing()
        if mid is None:
            self.notify(f"No mailing selected to {what}.")
        return mid

    def action_delete_mailing(self) -> None:
        mid = self._mailing_for("delete", "delete")
        if mid is not None:
            self.run_store(lambda: mailings.delete_preview(self.store, mid, self.account), self._confirm_delete)

    def _confirm_delete(self, s: mailings.DeleteSummary) -> None:
        # The name big and whole: a reflex on the wrong row must be seen before it costs.
        headline = fmt.plain(s.name, "bold")
        counts = [("recipients", s.recipients, ""), ("already sent", s.sent, "stay sent"),
                  ("unsent, to drop", s.dropped, "never sent (queued, in flight, suspended)")]
        body = Text()
        for label, n, note in counts:
            body.append("\n" if body else "")
            body.append(f"{label:<16}{fmt.count(n):>9}  ", style="bold" if label.startswith("unsent") else "")
            body.append(note, style="dim")
        body.append("\n\nIt leaves Sent Analytics and every total; the audit log keeps the record.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_store(lambda: self._delete(s.mailing_id), self._deleted)

        title = f"Delete mailing {s.mailing_id} ({s.status})?"
        self.push_screen(ConfirmScreen(title, body, "Delete", headline=headline), answered)

    def _waiting(self, what: str) -> Callable[[StoreBusy, float], None]:
        """An `on_wait` for a pause or delete on a busy store: say once that it waits, and for whom.

        The store retries these until applied (like the stop), so the operator
        must know the action is on its way, not lost.
        """
        told = False

        def on_wait(busy: StoreBusy, waited: float) -> None:
            nonlocal told
            if not told:
                told = True
                holder = busy.holder or "another process holds the write lock"
                message = f"{what} waits for the store ({holder}); it is applied as soon as the store is free."
                self._from_thread(lambda: self.notify(message, severity="warning", markup=False, timeout=8))

        return on_wait

    def _delete(self, mid: int) -> mailings.DeleteSummary:
        summary = mailings.delete_mailing(self.store, self.actor, mid, self.account,
                                          on_wait=self._waiting(f"Delete of mailing {mid}"))
        self._nudge()
        # The unsent rows leave in batches, so the write lock is never held for long.
        mailings.purge_deleted(self.store)
        return summary

    def _deleted(self, s: mailings.DeleteSummary) -> None:
        self.notify(f"Deleted mailing {s.mailing_id}: {fmt.count(s.dropped)} dropped, "
                    f"{fmt.count(s.sent)} had been sent.", markup=False)

    def action_toggle_pause(self) -> None:
        mid = self._mailing_for("pause or unpause", "pause")
        if mid is None:
            return
        current = self.snapshot.mailing(mid) if self.snapshot else None
        if current is not None and current.status == PAUSED:
            self.run_store(lambda: mailings.unpause(self.store, self.actor, mid, self.account),
                           lambda m: self.notify(f"Mailing {m.id} unpaused ({m.status}).", markup=False))
        else:
            def pause() -> tuple[mailings.Mailing, int]:
                m = mailings.pause(self.store, self.actor, mid, self.account,
                                   on_wait=self._waiting(f"Pause of mailing {mid}"))
                self._nudge()
                return m, mailings.waiting_at_relay(self.store, mid)

            self.run_store(pause, lambda done: self.notify(
                f"Mailing {done[0].id} paused." + (f" {fmt.count(done[1])} of its messages wait at a relay: "
                                                   "the relay agent holds them there." if done[1] else ""),
                markup=False))

    def action_requeue(self) -> None:
        mid = self._mailing_for("requeue", "requeue")
        if mid is not None:
            self.run_store(lambda: mailings.requeue_suspended(self.store, self.actor, mid, self.account),
                           lambda n: self.notify(f"{fmt.count(n)} suspended messages back in the queue.",
                                                 markup=False))

    def action_requeue_failed(self) -> None:
        mid = self._mailing_for("requeue the failed messages of", "requeue")
        if mid is not None:
            self.run_store(lambda: mailings.get_mailing(self.store, mid, self.account), self._confirm_requeue_failed)

    def _confirm_requeue_failed(self, m: mailings.Mailing) -> None:
        if not m.failed:
            self.notify(f"Mailing {m.id} has no failed messages.", markup=False)
            return
        body = Text.assemble(f"Mailing {m.id} ", fmt.plain(m.name, "bold"), f" ({m.status}).\n\n")
        body.append(f"{fmt.count(m.failed)} failed messages go back in the queue and are sent again, "
                    "with the newest template revision.\n")
        body.append("Correct the template first (e) if that is why they failed.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_store(lambda: mailings.requeue_failed(self.store, self.actor, m.id, self.account),
                               lambda n: self.notify(f"{fmt.count(n)} failed messages of mailing {m.id} back in "
                                                     "the queue.", markup=False))

        self.push_screen(ConfirmScreen(f"Requeue {fmt.count(m.failed)} failed messages?", body, "Requeue"), answered)

    def action_reschedule(self) -> None:
        mid = self._mailing_for("move", "change the time")
        m = self.snapshot.mailing(mid) if self.snapshot and mid is not None else None
        if m is None:
            return
        if m.status != PLANNED:
            self.notify(f"Mailing {m.id} is {m.status}: only planned mailings can be moved.", markup=False)
            return

        def answered(at: float | None) -> None:
            if at is not None:
                self.run_store(lambda: mailings.reschedule(self.store, self.actor, m.id, at, self.account),
                               lambda r: self.notify(f"Mailing {r.id} now starts {fmt.clock_time(r.scheduled_at)}.",
                                                     markup=False))

        self.push_screen(TimeScreen(f"Change the time of mailing {m.id}", m.scheduled_at), answered)

    # -- the template editor ---------------------------------------------------------

    def action_edit_template(self) -> None:
        mid = self._mailing_for("edit", "editing the template")
        if mid is None:
            return

        def load() -> tuple[mailings.Mailing, revisions.Revision | None]:
            return mailings.get_mailing(self.store, mid, self.account), revisions.newest_revision(self.store, mid)

        self.run_store(load, lambda pair: self.push_screen(TemplateEditor(*pair)))

    def save_template(self, editor: TemplateEditor, edit: Parts, overriding: int | None = None) -> None:
        """Save `edit` as a new revision based on the one the editor opened (and on `overriding`,
        a newer one the operator chose to replace); a save that came in meanwhile goes back to
        the editor to choose."""
        mid, based_on = editor.mailing.id, editor.revision.number

        def saved(rev: revisions.Revision) -> None:
            # The store returns the revision it was based on when the edit says the same.
            if rev.number == (overriding if overriding is not None else based_on):
                editor.show_error("Nothing changed: no new revision saved.")
                return
            over = f" (over revision {overriding})" if overriding is not None else ""
            self.notify(f"Saved revision {rev.number} of mailing {mid}{over}: unsent messages use it now.",
                        markup=False)
            editor.dismiss(None)

        def failed(exc: StoreError) -> None:
            if isinstance(exc, revisions.RevisionConflict):
                editor.conflict(exc.latest, edit)
            else:
                editor.show_error(str(exc))

        self.run_store(
            lambda: revisions.save_revision(
                self.store, self.actor, mid, subject=edit.subject, text_body=edit.text,
                html_body=edit.html or "",  # "" : no HTML part (none kept, or the one there removed)
                account=self.account, based_on=based_on, overriding=overriding,
            ),
            saved,
            failed,
        )
