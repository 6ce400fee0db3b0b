"""The account picker (ctrl+a) and the `:` command line, as k9s has for contexts.

The picker lists every account with its state in words (STOPPED / RUNNING),
since when and by whom, its own rate, queued and in flight, from the counters
every read already carries (`Snapshot.accounts`): it opens at once and follows
each read. Enter switches (`app.switch_account`), esc leaves everything as it
was. The header above it still names the account the stop key acts on, and the
picker says so: F2 stops that one, not the highlighted row.

`:account` opens the picker, `:account NAME` switches straight away; an
unknown name or command is said on the command line, which stays open.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from ..store.status import AccountSummary
from ..times import format_utc
from . import format as fmt
from .account_rates import AccountRates
from .header import ConsoleHeader
from .tables import LiveTable
from .view import LiveWidget, View

ACCOUNT_COLUMNS = (
    ("account", "Account", None),
    ("state", "State", None),
    ("since", "Since / by", None),
    ("rate", "Msg/s", None),
    ("queued", "Queued", None),
    ("in_flight", "In flight", None),
    ("mailings", "Mailings", None),
)


def state_cell(a: AccountSummary) -> Text:
    """In words, with a shape too: readable without colour."""
    if a.stopped:
        return Text("■ STOPPED", style="bold")
    return Text("● RUNNING")


def since_cell(a: AccountSummary) -> Text:
    if not a.stopped:
        return Text("-")
    text = Text(format_utc(a.stopped_at, "%H:%M"))
    text.append(" by ")
    text.append(fmt.visible(a.stopped_by or "?"))
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def rate_cell(a: AccountSummary, rates: AccountRates | None) -> Text:
    rate = rates.of(a.name) if rates is not None else None
    if a.stopped:
        return Text("0", justify="right")  # held by the stop, whatever the last reads said
    return Text("…" if rate is None else fmt.rate(rate), justify="right")


def account_row(a: AccountSummary, current: str, rates: AccountRates | None) -> tuple[Text, ...]:
    here = a.name == current
    name = Text()
    name.append("▶ " if here else "  ", style="bold")
    name.append_text(fmt.plain(a.name, "bold" if here else ""))
    return (
        name,
        state_cell(a),
        since_cell(a),
        rate_cell(a, rates),
        fmt.number(a.queued),
        fmt.number(a.in_flight),
        fmt.number(a.mailings),
    )


class AccountsTable(LiveTable, LiveWidget):
    """Every account, one row each, by name; the cursor starts on the account shown."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ACCOUNT_COLUMNS, **kwargs)
        self._placed = False

    def show(self, view: View) -> None:
        snap = view.snapshot
        if snap is None:
            return
        current = getattr(self.app, "account", "")
        rates = getattr(self.app, "account_rates", None)
        rows = {a.name: account_row(a, current, rates) for a in snap.accounts}
        self.sync(rows, [a.name for a in snap.accounts])
        if not self._placed and current in rows:
            self._placed = True
            self.move_cursor(row=self.get_row_index(current), scroll=True)


class AccountScreen(ModalScreen[None]):
    """A screen that only chooses the account: switching from it is allowed (account_switch)."""

    BINDINGS = [Binding("escape", "dismiss", "Cancel", show=False)]

    def _switch(self, name: str) -> None:
        refused = self.app.switch_account(name)  # type: ignore[attr-defined]
        if refused:
            self.query_one(".error", Static).update(fmt.plain(refused))
            return
        self.dismiss(None)


class AccountPicker(AccountScreen):
    DEFAULT_CSS = """
    AccountPicker { align: center middle; }
    AccountPicker #account-dialog {
        width: 100%; max-width: 84; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    AccountPicker AccountsTable { height: auto; max-height: 16; }
    """

    def compose(self) -> ComposeResult:
        account = getattr(self.app, "account", "?")
        yield ConsoleHeader()
        with Vertical(id="account-dialog"):
            yield Static(Text("Accounts", style="bold"), classes="dialog-title")
            yield AccountsTable(id="accounts")
            yield Static("", classes="error")
            hint = Text("enter switches to the highlighted account · esc cancels\n")
            hint.append("F2 stops ")
            hint.append(fmt.visible(account), style="bold")
            hint.append(", the account in the header")
            yield Static(hint, classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(AccountsTable)
        table.show(self.app.view())  # type: ignore[attr-defined]
        table.focus()

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._switch(str(event.row_key.value))


COMMANDS_HELP = "commands: account (the picker), account NAME (switch to NAME)"


class CommandLine(AccountScreen):
    """`:` then a command, as in k9s: `account` or `account NAME` (`acc`, `accounts` too)."""

    DEFAULT_CSS = """
    CommandLine { align: center bottom; }
    CommandLine #command-bar { width: 100%; height: auto; background: $surface; border-top: solid $primary; }
    CommandLine Input, CommandLine Input:focus { border: none; height: 1; padding: 0 1; background: $boost; }
    """

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(id="command-bar"):
            yield Static("", classes="error")
            yield Static(Text(f"{COMMANDS_HELP} · esc closes"), classes="hint")
            yield Input(placeholder="account NAME", id="command")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _run(self, event: Input.Submitted) -> None:
        event.stop()
        words = event.value.strip().removeprefix(":").split(maxsplit=1)
        if not words:
            self.dismiss(None)
            return
        command, rest = words[0], (words[1].strip() if len(words) > 1 else "")
        if command not in ("account", "accounts", "acc", "ctx"):
            self.query_one(".error", Static).update(fmt.plain(f"Unknown command {command!r}; {COMMANDS_HELP}."))
            return
        if not rest:
            self.dismiss(None)
            self.app.call_later(self.app.run_action, "pick_account")
            return
        self._switch(rest)
