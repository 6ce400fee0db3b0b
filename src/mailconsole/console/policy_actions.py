"""Actions on the store's policy: acknowledge an automatic pause, edit the thresholds.

A mixin of the app, like mailing_actions.py: store calls in worker threads
(`run_store`), a confirmation with every change before the policy is saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store import auto_pause
from ..store import policy as policy_store
from .modals import ConfirmScreen
from .policy_settings import PolicyScreen, changes_text

if TYPE_CHECKING:
    from ..store import Actor, Store
    from .live import Snapshot


class PolicyActions:
    # Provided by the app.
    store: Store
    account: str
    actor: Actor
    snapshot: Snapshot | None
    run_store: Any
    notify: Any
    push_screen: Any
    _refuse_read_only: Any

    def action_acknowledge_automatic(self) -> None:
        if self._refuse_read_only("acknowledge"):
            return
        if self.snapshot is None or not self.snapshot.trips:
            self.notify("No automatic pause or stop to acknowledge.")
            return
        account = self.account
        self.run_store(lambda: auto_pause.acknowledge(self.store, self.actor, account), self._acknowledged)

    def _acknowledged(self, n: int) -> None:
        self.notify(f"Acknowledged {n} automatic pause(s)/stop(s); they stay paused/stopped until you act."
                    if n else "Nothing left to acknowledge.", markup=False)

    def action_edit_policy(self) -> None:
        if self._refuse_read_only("edit the policy"):
            return
        current = self.snapshot.policy if self.snapshot is not None else policy_store.Policy()

        def typed(changes: dict[str, str] | None) -> None:
            if changes:
                self._confirm_policy(current, changes)

        self.push_screen(PolicyScreen(current), typed)

    def _confirm_policy(self, current: policy_store.Policy, changes: dict[str, str]) -> None:
        new = policy_store.parse(current, changes)  # checked by the dialog already
        account = self.account

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_store(lambda: policy_store.set_values(self.store, self.actor, changes, account),
                               lambda result: self.notify(f"Policy saved: {len(result[1])} setting(s) changed; "
                                                          "engines apply it within seconds.", markup=False))

        self.push_screen(ConfirmScreen("Change the policy?", changes_text(current, new), "Save", danger=False,
                                       id="policy-confirm"), answered)
