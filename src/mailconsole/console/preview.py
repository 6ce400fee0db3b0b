"""Preview: one recipient's message as the engine would send it, headers, text part and HTML source.

Rendered in a worker thread by `engine.preview.render_message` (the engine's own
builder, with the console's engine configuration), for the recipient whose
address is typed, or the next one in the queue. `parts` previews an edit not
saved yet (the editor's), otherwise the newest saved revision is used. A message
that cannot be built shows why, as the engine would record it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from ..store import StoreError
from . import format as fmt
from .diffing import Parts
from .header import ConsoleHeader
from .keys import STOP_KEY
from .test_send_dialog import ask_test_send

if TYPE_CHECKING:
    from ..engine.preview import Rendered

KEEP = "\n\t"  # line structure stays; every other control character is written out


def _section(title: str) -> Text:
    return Text(f"\n── {title} ──\n", style="bold")


def message_text(rendered: Rendered) -> Text:
    """The rendered message for the screen: a line on what it is, then headers and parts, as literal text."""
    from ..engine.preview import message_parts

    out = Text()
    revision = f"revision {rendered.revision}" if rendered.revision is not None else "unsaved edit"
    out.append(f"Mailing {rendered.mailing_id}, {revision}")
    r = rendered.recipient
    if r is not None:
        out.append(" · for ")
        out.append(fmt.plain(r.email, "bold"))
        out.append(f" (message {r.message_id}, {r.state}" + (", next in the queue)" if r.state == "queued" else ")"))
    out.append("\n")
    if rendered.built is None:
        out.append(Text(fmt.visible(f"Cannot be rendered: {rendered.error}"), style="bold red"))
        return out
    parts = message_parts(rendered.built.data)
    out.append(_section("headers"))
    for name, value in parts.headers:
        out.append(fmt.visible(name), style="bold")
        out.append(": " + fmt.visible(value) + "\n")
    out.append(_section("text part"))
    out.append(fmt.visible(parts.text or "(none)", keep=KEEP))
    out.append(_section("HTML part (source)"))
    out.append(fmt.visible(parts.html, keep=KEEP) if parts.html is not None else "(none: this mailing has no HTML part)")
    return out


class PreviewScreen(ModalScreen[None]):
    """Full-screen, modal like the editor: the list's keys must not act behind it; the stop key still does."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("a", "address", "Recipient…"),
        Binding("n", "next_in_queue", "Next in queue"),
        Binding("s", "test_send", "Test send…"),
        Binding(STOP_KEY, "app.emergency_stop", "STOP ALL", priority=True),
    ]

    def __init__(self, mailing_id: int, parts: Parts | None = None, address: str | None = None) -> None:
        super().__init__()
        self.mailing_id = mailing_id
        self.parts = parts
        self.address = address
        self.rendered: Rendered | None = None

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(id="preview"):
            yield Input(fmt.visible(self.address or ""), id="preview-address",
                        placeholder="recipient address, enter shows it (empty: the next in the queue)")
            with VerticalScroll(id="preview-scroll"):
                yield Static(Text("rendering…"), id="preview-message")
        yield Footer()

    def on_mount(self) -> None:
        self.app.refresh_views()  # type: ignore[attr-defined]
        self.query_one("#preview-scroll").focus()
        self.render_for(self.address)

    def render_for(self, address: str | None) -> None:
        """Render in a worker thread; the screen shows the message, or why it cannot be built."""
        app = self.app
        config = app.engine_settings()  # type: ignore[attr-defined]
        mid, parts, now = self.mailing_id, self.parts, app.clock()  # type: ignore[attr-defined]

        def render() -> Rendered:
            from ..engine.preview import render_message

            return render_message(app.store, config, mid, address=address, parts=parts,  # type: ignore[attr-defined]
                                  account=app.account, now=now)  # type: ignore[attr-defined]

        self.query_one("#preview-message", Static).update(Text("rendering…"))
        app.run_store(render, self._show, self._failed)  # type: ignore[attr-defined]

    def _show(self, rendered: Rendered) -> None:
        if not self.is_attached:
            return  # closed while rendering
        self.rendered = rendered
        self.query_one("#preview-message", Static).update(message_text(rendered))

    def _failed(self, exc: StoreError) -> None:
        if not self.is_attached:
            return
        self.rendered = None
        self.query_one("#preview-message", Static).update(Text(fmt.visible(f"Cannot be rendered: {exc}"),
                                                               style="bold red"))

    @on(Input.Submitted, "#preview-address")
    def _address_given(self, event: Input.Submitted) -> None:
        self.render_for(event.value.strip() or None)
        self.query_one("#preview-scroll").focus()

    def action_address(self) -> None:
        self.query_one("#preview-address", Input).focus()

    def action_next_in_queue(self) -> None:
        self.query_one("#preview-address", Input).value = ""
        self.render_for(None)

    def action_test_send(self) -> None:
        if self.parts is not None:
            self.notify("A test send uses a saved revision: save the edit first.", severity="warning")
            return
        shown = self.rendered.recipient if self.rendered is not None else None
        ask_test_send(self.app, self.mailing_id, shown.email if shown is not None else "")  # type: ignore[arg-type]

    def action_close(self) -> None:
        self.dismiss(None)
