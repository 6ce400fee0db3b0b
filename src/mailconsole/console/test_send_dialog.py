"""Test send from the console: ask where to, say exactly what goes out, confirm, send, report the reply.

The send itself is `engine.test_send.send_test`, run in a worker thread. The
engine's modules are imported only when a test send is asked for: a console that
only observes never loads the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from . import format as fmt
from .header import ConsoleHeader
from .modals import ConfirmScreen

if TYPE_CHECKING:
    from ..engine.preview import Rendered
    from .app import MailConsole
    from ..engine.test_send import TestSendResult


@dataclass(frozen=True)
class TestSendRequest:
    __test__ = False  # not a pytest test class, whatever its name

    to: str
    recipient: str | None  # None: the next in the queue


class TestSendScreen(ModalScreen["TestSendRequest | None"]):
    """The destination address (checked as the engine checks addresses) and whose message to send."""

    __test__ = False  # not a pytest test class, whatever its name

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, mailing_id: int, recipient: str = "") -> None:
        super().__init__()
        self._mailing_id = mailing_id
        self._recipient = recipient

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(classes="dialog"):
            yield Static(Text(f"Test send of mailing {self._mailing_id}", style="bold"), classes="dialog-title")
            yield Static("Send to (your address)", classes="field-label")
            yield Input(placeholder="you@example.com", id="test-to")
            yield Static("As rendered for (empty: the next recipient in the queue)", classes="field-label")
            yield Input(fmt.visible(self._recipient), placeholder="recipient@example.org", id="test-recipient")
            yield Static("", id="test-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Next (enter)", id="ok", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#test-to", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        from ..engine.addresses import address_problem

        to = self.query_one("#test-to", Input).value.strip()
        recipient = self.query_one("#test-recipient", Input).value.strip()
        problem = address_problem("destination", to) if to else "give the address to send the test to"
        if problem is not None:
            self.query_one("#test-error", Static).update(Text(fmt.visible(problem)))
            self.query_one("#test-to", Input).focus()
            return
        self.dismiss(TestSendRequest(to, recipient or None))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def confirm_text(rendered: Rendered, to: str, transport: str) -> Text:
    """What the operator agrees to: which revision, rendered for whom, sent where, through what."""
    assert rendered.recipient is not None
    revision = f"revision {rendered.revision}" if rendered.revision is not None else "the unsaved edit"
    body = Text(f"Send {revision} as rendered for ")
    body.append(fmt.plain(rendered.recipient.email, "bold"))
    body.append(" to ")
    body.append(fmt.plain(to, "bold"))
    body.append("?\n\n")
    body.append(Text.assemble("Transport: ", fmt.plain(transport), ". "))
    if transport.startswith("null"):
        body.append("This transport discards messages: nothing will be sent. ")
    body.append("The recipient's own message is not changed; the test send is recorded in the audit log.")
    return body


def ask_test_send(app: MailConsole, mailing_id: int, recipient: str = "") -> None:
    """The whole exchange, from the destination's question to the server's reply in a toast."""
    if app._refuse_read_only("test send"):
        return
    config = app.engine_settings()

    def asked(request: TestSendRequest | None) -> None:
        if request is not None:
            app.run_store(lambda: render(request), lambda rendered: confirm(request, rendered))

    def render(request: TestSendRequest) -> Rendered:
        from ..engine.preview import render_message

        return render_message(app.store, config, mailing_id, address=request.recipient, account=app.account)

    def confirm(request: TestSendRequest, rendered: Rendered) -> None:
        if rendered.recipient is None or rendered.built is None:
            app.notify(f"Test send not possible: {rendered.error}", severity="error", markup=False)
            return
        recipient = rendered.recipient.email

        def answered(yes: bool | None) -> None:
            if yes:
                app.run_store(lambda: send(recipient, request.to), reported)

        body = confirm_text(rendered, request.to, config.masked_transport)
        app.push_screen(ConfirmScreen("Send a test?", body, "Send", danger=False), answered)

    def send(recipient: str, to: str) -> TestSendResult:
        from ..engine.test_send import send_test

        return send_test(app.store, config, app.actor, mailing_id, to, recipient=recipient, account=app.account)

    def reported(result: TestSendResult) -> None:
        word = "Test sent" if result.sent else "Test not sent"
        app.notify(f"{word} ({result.transport}): {result.reply}", markup=False, timeout=15,
                   severity="information" if result.sent else "warning")

    app.push_screen(TestSendScreen(mailing_id, recipient), asked)
