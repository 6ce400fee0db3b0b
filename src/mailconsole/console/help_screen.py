"""Help: every key, generated from the same table as the bindings."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .header import ConsoleHeader
from .keys import ACTIONS, SCREEN_KEYS


def keys_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1)
    for a in ACTIONS:
        table.add_row(Text(a.shown), Text.assemble((a.title, "bold"), ": ", a.help))
    for keys, what in SCREEN_KEYS:
        table.add_row(Text(keys), Text(what))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", show=False)]

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("Keys (esc closes)", style="bold"), classes="dialog-title")
            yield Static(keys_table())
