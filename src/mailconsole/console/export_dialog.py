"""Export who got a revision, from the detail view: the file to write, then the export in a worker thread.

The rows are `store.recipients.write_csv`'s (address, merge fields, sent time,
revision, Message-ID), the file the operator sends a correction from. Written
beside the console's working directory unless a path is typed; an existing file
is replaced only after a confirmation. The path is copied to the clipboard
(OSC 52) so that it can be pasted into the next command, over SSH too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from ..store import StoreError, recipients
from . import format as fmt
from .header import ConsoleHeader
from .modals import ConfirmScreen

if TYPE_CHECKING:
    from .app import MailConsole


@dataclass(frozen=True)
class ExportRequest:
    path: Path
    state: str


def default_path(mailing_id: int, revision: int, state: str) -> Path:
    return Path(f"mailing-{mailing_id}-revision-{revision}-{state}.csv")


class ExportScreen(ModalScreen["ExportRequest | None"]):
    """Which messages (sent with this revision, or queued, failed, suspended) and the file to write."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, mailing_id: int, revision: int) -> None:
        super().__init__()
        self._mailing_id = mailing_id
        self._revision = revision

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(classes="dialog"):
            yield Static(Text(f"Export the recipients of mailing {self._mailing_id}, revision {self._revision}",
                              style="bold"), classes="dialog-title")
            yield Static("Messages", classes="field-label")
            yield Select([(f"{s} (revision {self._revision})" if s == "sent" else s, s) for s in recipients.STATES],
                         value="sent", allow_blank=False, id="export-state", compact=True)
            yield Static("File (CSV: address, merge fields, sent time, revision, Message-ID)", classes="field-label")
            yield Input(str(default_path(self._mailing_id, self._revision, "sent")), id="export-path")
            yield Static("", id="export-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export (enter)", id="ok", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @on(Select.Changed, "#export-state")
    def _state_changed(self, event: Select.Changed) -> None:
        box = self.query_one("#export-path", Input)
        # Follow the state in the name only while the operator has not typed one of their own.
        if box.value in {str(default_path(self._mailing_id, self._revision, s)) for s in recipients.STATES}:
            box.value = str(default_path(self._mailing_id, self._revision, str(event.value)))

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            self.show_error("give the file to write")
            return
        self.dismiss(ExportRequest(Path(text).expanduser(), str(self.query_one("#export-state", Select).value)))

    def show_error(self, message: str) -> None:
        self.query_one("#export-error", Static).update(Text(fmt.visible(message)))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def ask_export(app: MailConsole, mailing_id: int, revision: int) -> None:
    """The whole exchange: which messages and where, replace an existing file only if confirmed, write, report."""
    domain = None
    try:
        domain = app.engine_settings().message_domain  # the Message-IDs the engine writes
    except Exception:  # no engine configuration at hand: the engine's default, the sender's domain
        domain = None

    def asked(request: ExportRequest | None) -> None:
        if request is None:
            return
        if request.path.exists():
            body = Text.assemble("The file ", fmt.plain(str(request.path), "bold"),
                                 " exists; it is replaced by the export.")
            app.push_screen(ConfirmScreen("Replace the file?", body, "Replace"),
                            lambda yes: export(request) if yes else None)
        else:
            export(request)

    def export(request: ExportRequest) -> None:
        # Only the sent messages carry a revision; the others go out with the newest (or failed without one).
        revision_filter = revision if request.state == "sent" else None
        app.run_store(
            lambda: recipients.write_csv(app.store, mailing_id, request.path, revision=revision_filter,
                                         state=request.state, account=app.account, message_domain=domain),
            lambda n: done(request, n),
            failed,
        )

    def done(request: ExportRequest, n: int) -> None:
        where = str(request.path.resolve())
        app.copy_to_clipboard(where)
        what = f"revision {revision} sent" if request.state == "sent" else request.state
        app.notify(f"Exported {n:,} recipients ({what}) of mailing {mailing_id} to {where}; the path is on the "
                   "clipboard (OSC 52: needs a terminal that allows it, e.g. tmux set-clipboard on).",
                   markup=False, timeout=15)

    def failed(exc: StoreError) -> None:
        app.notify(f"Export not written: {exc}", severity="error", markup=False, timeout=15)

    app.push_screen(ExportScreen(mailing_id, revision), asked)
