"""The template editor: correct the subject and body, save a new revision.

Messages are rendered at send time from the newest revision, so saving here
changes what every recipient not yet sent receives. While the account is not
stopped, messages keep going out with the current revision during the edit,
and the editor says so.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Static, TextArea

from ..store.mailings import Mailing
from ..store.revisions import Revision
from . import format as fmt
from .header import ConsoleHeader
from .keys import STOP_KEY
from .view import LiveWidget, View


class EditorWarning(Static, LiveWidget):
    """Visible only while mail is going out with the revision being corrected."""

    def __init__(self, revision: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._revision = revision

    def show(self, view: View) -> None:
        self.display = not view.stopped
        self.update(Text(
            f"⚠ The account is not stopped: messages are going out with revision {self._revision} "
            "while you edit. Press F2 to stop first."
        ))


class TemplateEditor(ModalScreen[None]):
    """Full-screen, but modal: the list's keys (d, p, q…) must not act behind it; the stop key still does."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save revision"),
        Binding("escape", "close", "Back"),
        # Shown here because a modal screen's footer lists only its own keys; the app's
        # priority binding acts first either way.
        Binding(STOP_KEY, "app.emergency_stop", "STOP ALL", priority=True),
    ]

    def __init__(self, mailing: Mailing, revision: Revision) -> None:
        super().__init__()
        self.mailing = mailing
        self.revision = revision

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(id="editor"):
            title = Text(f"Template of mailing {self.mailing.id} ")
            title.append(fmt.plain(self.mailing.name, style="bold"))
            title.append(f": editing revision {self.revision.number}; saving creates revision {self.revision.number + 1}")
            yield Static(title, id="editor-title")
            fields = ", ".join(["email", *self.mailing.fields])
            yield Static(fmt.plain(f"merge fields: {fields}  (use {{{{ name }}}})"), classes="hint")
            yield EditorWarning(self.revision.number, id="editor-warning")
            yield Static("Subject", classes="field-label")
            # Input and TextArea draw what they hold as it is: a control character saved
            # before templates refused them would reach the terminal, so it is shown
            # written out (and saved that way, visibly, if the operator saves).
            yield Input(fmt.visible(self.revision.subject), id="subject")
            yield Static("Body (text)", classes="field-label")
            yield TextArea(fmt.visible(self.revision.text_body, keep="\n\t"), id="body", soft_wrap=True, show_line_numbers=True)
            yield Static("", id="editor-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save revision (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Back (esc)", id="back", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.app.refresh_views()  # type: ignore[attr-defined]
        self.query_one("#subject", Input).focus()

    @property
    def subject(self) -> str:
        return self.query_one("#subject", Input).value

    @property
    def body(self) -> str:
        return self.query_one("#body", TextArea).text

    def show_error(self, message: str) -> None:
        self.query_one("#editor-error", Static).update(Text(message))

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self.show_error("")
        self.app.save_template(self)  # type: ignore[attr-defined]

    @on(Button.Pressed, "#back")
    def action_close(self) -> None:
        self.dismiss(None)
