"""The store's policy in the Settings tab, and the dialog that edits it.

The dialog takes what `mailconsole policy set` takes (KEY=VALUE …), checks it
as the store will, and hands the changes back; the app then asks for
confirmation with every change listed before anything is saved.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..store import InvalidInput
from ..store import policy as policy_store
from ..store.policy import Policy, describe
from .header import ConsoleHeader
from .view import LiveWidget, View


def _rates(p: Policy, prefix: str) -> str:
    parts = [f"{label} > {describe('max_permanent', getattr(p, prefix + 'max_' + key))}"
             for key, label in (("permanent", "5xx"), ("bounced", "bounces"), ("deferred", "4xx"))]
    return " · ".join(parts)


def policy_text(p: Policy) -> Text:
    """Three lines: the mailing's rule, the account's, and bounces into the suppression list."""
    text = Text()
    text.append("Automatic pause ", style="bold")
    text.append(f"{describe('auto_pause', p.auto_pause)}: last {p.window:,} outcomes of a mailing "
                f"(judged from {p.min_outcomes:,}): {_rates(p, '')}\n")
    text.append("Automatic stop ", style="bold")
    text.append(f"{describe('auto_stop', p.auto_stop)}: last {p.account_window:,} outcomes of the account "
                f"(judged from {p.account_min_outcomes:,}): {_rates(p, 'account_')}\n")
    text.append("Bounces suppress ", style="bold")
    text.append(f"{describe('suppress_bounces', p.suppress_bounces)}: a relay's hard bounce (5.x.x) "
                "adds the address to the suppression list · P edits")
    return text


class PolicyPanel(Vertical, LiveWidget):
    def compose(self) -> ComposeResult:
        yield Static("Policy", classes="section-title")
        yield Static(id="policy-text")

    def show(self, view: View) -> None:
        if view.snapshot is not None:
            self.query_one("#policy-text", Static).update(policy_text(view.snapshot.policy))


def changes_text(current: Policy, new: Policy) -> Text:
    text = Text()
    for key in policy_store.KEYS:
        old, value = getattr(current, key), getattr(new, key)
        if old != value:
            if text:
                text.append("\n")
            text.append(f"{key}: {describe(key, old)} → ")
            text.append(describe(key, value), style="bold")
    return text


class PolicyScreen(ModalScreen[dict[str, str] | None]):
    """Type KEY=VALUE …; returns the changes once they check out (None: cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, current: Policy) -> None:
        super().__init__(id="policy-dialog")
        self._current = current

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(classes="dialog"):
            yield Static(Text("Edit the policy", style="bold"), classes="dialog-title")
            yield Static(policy_text(self._current), classes="dialog-body")
            yield Static(Text(f"keys: {', '.join(policy_store.KEYS)}", style="dim"), classes="dialog-body")
            yield Input(placeholder="e.g. max_permanent=5% window=300 suppress_bounces=on", id="policy-input")
            yield Static("", id="policy-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Review (enter)", id="ok", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#policy-input", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        error = self.query_one("#policy-error", Static)
        changes: dict[str, str] = {}
        for item in self.query_one("#policy-input", Input).value.split():
            key, sep, value = item.partition("=")
            if not sep or not key:
                error.update(f"{item!r} is not KEY=VALUE")
                return
            changes[key] = value
        if not changes:
            error.update("nothing typed: KEY=VALUE …")
            return
        try:
            new = policy_store.parse(self._current, changes)
        except InvalidInput as exc:
            error.update(str(exc))
            return
        if new == self._current:
            error.update("nothing changes: the policy already has these values")
            return
        self.dismiss(changes)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
