"""Dialogs: confirm a destructive or sending action, pick a new time.

Each dialog states plainly what will happen ("12,000 will be sent, 300
suspended"), so confirming is a decision, not a reflex. The stop key still
works on top of any dialog: it is an app-level priority binding. Each dialog
carries the console's header: the state, and which store and account it acts on.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from . import format as fmt
from .header import ConsoleHeader


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no, with what a yes does; esc and n say no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, body: RenderableType, confirm: str, *, danger: bool = True,
                 id: str | None = None, headline: Text | None = None) -> None:
        """`headline`: what the action acts on (a mailing's name), shown big on its own lines, never cut."""
        super().__init__(id=id)
        self._title = title
        self._headline = headline
        self._body = body
        self._confirm = confirm
        self._danger = danger

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(classes="dialog"):
            yield Static(Text(self._title, style="bold"), classes="dialog-title")
            if self._headline is not None:
                yield Static(self._headline, classes="dialog-headline")
            yield Static(self._body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._confirm} (y)", id="yes", variant="error" if self._danger else "success",
                             compact=True)
                yield Button("Cancel (n)", id="no", compact=True)

    def on_mount(self) -> None:
        # Focus starts on Cancel: an Enter pressed by habit does nothing harmful.
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def parse_when(text: str) -> float:
    """A time typed by the operator: ISO 8601, UTC unless a zone is given."""
    dt = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class TimeScreen(ModalScreen[float | None]):
    """Ask for a new scheduled time; returns epoch seconds or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, current: float) -> None:
        super().__init__()
        self._title = title
        self._current = current

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(classes="dialog"):
            yield Static(Text(self._title, style="bold"), classes="dialog-title")
            yield Static(Text(f"now scheduled {fmt.clock_time(self._current)}"), classes="dialog-body")
            yield Input(fmt.clock_time(self._current).removesuffix(" UTC"), id="when")
            yield Static("", id="when-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Change (enter)", id="ok", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        try:
            self.dismiss(parse_when(self.query_one("#when", Input).value))
        except ValueError:
            self.query_one("#when-error", Static).update("not a time: use YYYY-MM-DD HH:MM[:SS] (UTC)")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
