"""The choice when another save came in while the operator edited: keep editing, save mine over it, take theirs.

Shown by the editor when the store refuses a save based on an older revision
(`revisions.RevisionConflict`). It says who saved which revision when, and shows
what differs between that revision and the operator's edit, so that neither
save replaces the other unseen. Keep editing is the default.
"""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..store.revisions import Revision
from . import format as fmt
from .diffing import Parts, diff_text
from .header import ConsoleHeader

Choice = Literal["keep", "override", "theirs"]


def revision_parts(revision: Revision) -> Parts:
    """A revision's parts as the editor shows them (control characters written out)."""
    html = revision.html_body
    return Parts(fmt.visible(revision.subject), fmt.visible(revision.text_body, keep="\n\t"),
                 fmt.visible(html, keep="\n\t") if html else None)


class ConflictScreen(ModalScreen[Choice]):
    """Another revision was saved since the editor opened: show it against the edit, ask what to do."""

    BINDINGS = [
        Binding("escape,k", "choose('keep')", "Keep editing", show=False),
        Binding("o", "choose('override')", "Save mine over it", show=False),
        Binding("t", "choose('theirs')", "Take theirs", show=False),
    ]

    def __init__(self, opened: int, latest: Revision, mine: Parts) -> None:
        super().__init__()
        self.opened = opened
        self.latest = latest
        self.mine = mine

    def compose(self) -> ComposeResult:
        latest = self.latest
        yield ConsoleHeader()
        with Vertical(classes="dialog conflict"):
            yield Static(Text(f"Revision {latest.number} was saved while you edited", style="bold"),
                         classes="dialog-title")
            said = Text.assemble(
                fmt.plain(latest.created_by, "bold"),
                f" saved revision {latest.number} at {fmt.clock_time(latest.created_at)}; you opened revision "
                f"{self.opened}. What differs from theirs to yours:",
            )
            yield Static(said, classes="dialog-body")
            with VerticalScroll(id="conflict-diff"):
                yield Static(diff_text(revision_parts(latest), self.mine, f"revision {latest.number}", "your edit"))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep editing (esc)", id="keep", compact=True)
                yield Button("Save mine over it (o)", id="override", variant="warning", compact=True)
                yield Button("Take theirs (t)", id="theirs", variant="error", compact=True)

    def on_mount(self) -> None:
        # An Enter pressed by habit keeps editing: neither version is lost.
        self.query_one("#keep", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)  # type: ignore[arg-type]

    def action_choose(self, choice: Choice) -> None:
        self.dismiss(choice)
