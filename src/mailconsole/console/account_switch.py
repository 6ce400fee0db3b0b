"""Changing the account the console shows and acts on.

Every action acts on `app.account`, so the account in the header must be the
one the stop key, pause, delete and resume reach. Switching is therefore one
step on the UI thread: the new account is read first (counters only, as the
first frame on mount is), and only when that read succeeded do the account, the
snapshot and every pane change together; a read started for the old account
that lands later is dropped by its sequence number.

A switch is refused, with the reason, while something is still under way for
the account shown: an open dialog or editor (opened for that account, it would
act on it from under another name), a stop not saved yet (it keeps being
retried for its account; the screen must keep saying so), an action still
running (a delete waiting for a busy store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.screen import Screen

from ..store import NotFound, StoreError
from ..store.status import all_accounts
from .account_rates import AccountRates, shown_rate
from .live import read_snapshot
from .rates import RateHistory
from .view import LiveWidget

if TYPE_CHECKING:
    from ..store import Store
    from .live import Snapshot
    from .stopping import StopProgress, StopRequest


class SwitchesAccount:
    """Opens the account picker and switches accounts; a mixin of the app."""

    # Provided by the app.
    store: Store
    account: str
    snapshot: Snapshot | None
    rates: RateHistory
    account_rates: AccountRates
    stop_pending: bool
    drain_from: int | None
    stop_request: StopRequest | None
    stop_progress: StopProgress | None
    _applied: int
    _reading: bool
    _poll_again: bool
    _stop_seen_from: int
    clock: Any
    screen_stack: list[Screen[Any]]
    workers: Any
    notify: Any
    push_screen: Any
    poll: Any
    batch_update: Any
    _next_read: Any

    # -- opening the picker ------------------------------------------------------------

    def action_pick_account(self) -> None:
        from .accounts_screen import AccountPicker

        refused = self._dialog_open()
        if refused:
            self.notify(refused, severity="warning", markup=False)
            return
        self.push_screen(AccountPicker())

    def action_command_line(self) -> None:
        from .accounts_screen import CommandLine

        refused = self._dialog_open()
        if refused:
            self.notify(refused, severity="warning", markup=False)
            return
        self.push_screen(CommandLine())

    # -- why not now --------------------------------------------------------------------

    def _dialog_open(self) -> str | None:
        from .accounts_screen import AccountScreen

        if any(not isinstance(s, AccountScreen) for s in self.screen_stack[1:]):
            return (f"Close the open dialog first (esc): it acts on account {self.account}; "
                    "then switch accounts.")
        return None

    def switch_refused(self) -> str | None:
        """Why the account cannot change now, or None."""
        request = self.stop_request
        if request is not None and request.is_alive():
            return (f"The stop of account {self.account} is still being saved (it is retried until it is); "
                    "switch once the screen says STOPPED.")
        if any(w.group == "actions" and not w.is_finished for w in self.workers):
            return f"An action on account {self.account} is still running; switch once it is done."
        return self._dialog_open()

    # -- the switch ---------------------------------------------------------------------

    def switch_account(self, name: str) -> str | None:
        """Show and act on account `name` from now on; returns why not, or None once done.

        Blocking for one read, on purpose: the first frame that names the new
        account already shows its data, never the old account's under its name.
        """
        if name == self.account:
            return None
        refused = self.switch_refused()
        if refused:
            return refused
        seq = self._next_read()
        try:
            snap = read_snapshot(self.store, name, self.clock())
        except NotFound:
            return unknown_account(name, self._account_names())
        except StoreError as exc:
            return f"Account {name} could not be read, still on {self.account}: {exc}"
        self.account = name
        # Reads started before this one are for the old account: dropped when they land.
        self._applied = seq
        if self._reading:
            self._poll_again = True  # once the old read lands, read the new account's selection
        self.snapshot = snap
        self.account_rates.add(snap.taken_at, snap.accounts)
        self.rates = RateHistory()  # another account's rates and sparkline mean nothing here
        self.rates.add(snap.taken_at, shown_rate(snap, self.account_rates), snap.mailings)
        # What the console knew about the old account's stop (it was saved: see switch_refused).
        self.stop_request = None
        self.stop_progress = None
        self.stop_pending = False
        self.drain_from = None
        self._stop_seen_from = 0
        self._show_everywhere()
        self.poll()  # the selected mailing's revisions and the audit of the new account
        return None

    def _account_names(self) -> list[str]:
        if self.snapshot is not None and self.snapshot.accounts:
            return [a.name for a in self.snapshot.accounts]
        try:
            return [a.name for a in all_accounts(self.store)]
        except StoreError:
            return []

    def _show_everywhere(self) -> None:
        """Every live widget, hidden tabs too: none may show the old account a frame longer."""
        view = self.view()  # type: ignore[attr-defined]
        with self.batch_update():
            for screen in self.screen_stack:
                for widget in screen.walk_children(LiveWidget):
                    widget.show(view)


def unknown_account(name: str, known: list[str]) -> str:
    listed = ", ".join(known) if known else "none"
    return f"No account named {name!r} in this store (accounts: {listed})."
