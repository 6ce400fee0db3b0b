"""The template editor: correct the subject, text body and HTML body, save a new revision.

Messages are rendered at send time from the newest revision, so saving here
changes what every recipient not yet sent receives. While the account is not
stopped, messages keep going out with the current revision during the edit,
and the editor says so.

What keeps a correction from going wrong:
- every part the mailing has is here (the HTML body on its own tab, ctrl+t);
  a save that leaves a part unchanged asks first, quoting what that part still
  says that the edit removed elsewhere (unchanged_parts.py);
- a save is based on the revision opened: if another was saved meanwhile, the
  operator sees it against the edit and chooses (edit_conflict.py);
- esc with unsaved changes asks before discarding them;
- the template is re-checked as the operator types (off the UI thread), so an
  error shown goes away once it is fixed.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Static, TabbedContent, TabPane, TextArea

from ..store import InvalidInput, revisions
from ..store.mailings import Mailing
from ..store.revisions import Revision
from . import format as fmt
from .diffing import Parts
from .edit_conflict import Choice, ConflictScreen, revision_parts
from .header import ConsoleHeader
from .keys import STOP_KEY
from .modals import ConfirmScreen
from .preview import PreviewScreen
from .unchanged_parts import Unchanged, changed_titles, in_sentence, unchanged_parts
from .view import LiveWidget, View

NO_HTML = ("This mailing has no HTML part: it is sent as text only. Type here to add one; "
           "left empty, it stays text only.")


class EditorWarning(Static, LiveWidget):
    """Visible only while mail is going out with the revision being corrected."""

    def __init__(self, revision: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.revision = revision

    def show(self, view: View) -> None:
        self.display = not view.stopped
        self.update(Text(
            f"⚠ The account is not stopped: messages are going out with revision {self.revision} "
            "while you edit. Press F2 to stop first."
        ))


def template_problem(parts: Parts, fields: list[str]) -> str | None:
    """The first problem the save would refuse the template for, without the store (syntax, names, sizes)."""
    try:
        revisions.validate(parts.subject, parts.text, parts.html, fields)
    except InvalidInput as exc:
        return str(exc).removeprefix("template not saved: ")
    return None


def unchanged_warning(changed: list[str], unchanged: list[Unchanged], next_number: int,
                      html_removed: bool = False) -> Text:
    """The confirmation's words: what changed, what did not and what it still says."""
    body = Text(f"You changed: {in_sentence(changed)}.\n")
    if html_removed:
        body.append("Removed: HTML body", style="bold")
        body.append(" — the mail goes out as text only.\n")
    for part in unchanged:
        body.append(f"Unchanged: {part.title}", style="bold")
        if part.still_says:
            body.append(" — it still says ")
            for i, s in enumerate(part.still_says):
                body.append(", " if i else "")
                body.append(f"“{s.phrase}”", style="bold")
                body.append(" (line ")
                body.append(f"{s.line}: ")
                body.append(fmt.plain(s.text))
                body.append(")")
        body.append("\n")
    body.append(f"\nSaving creates revision {next_number}, used for every message not yet sent. "
                "Cancel to go back and edit (ctrl+t switches text and HTML).")
    return body


class TemplateEditor(ModalScreen[None]):
    """Full-screen, but modal: the list's keys (d, p, q…) must not act behind it; the stop key still does."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save revision"),
        Binding("ctrl+t", "switch_part", "Text/HTML"),
        Binding("ctrl+r", "preview", "Preview"),
        Binding("escape", "close", "Back"),
        # Shown here because a modal screen's footer lists only its own keys; the app's
        # priority binding acts first either way.
        Binding(STOP_KEY, "app.emergency_stop", "STOP ALL", priority=True),
    ]

    # Seconds after the last keystroke before the template is checked again.
    CHECK_DELAY = 0.3

    def __init__(self, mailing: Mailing, revision: Revision) -> None:
        super().__init__()
        self.mailing = mailing
        self.revision = revision
        self.opened = revision_parts(revision)
        # A newer revision than the one opened, seen at a save the operator chose to keep editing after.
        self.newer: Revision | None = None
        self._check_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        with Vertical(id="editor"):
            yield Static(self._title(), id="editor-title")
            fields = ", ".join(["email", *self.mailing.fields])
            yield Static(fmt.plain(f"merge fields: {fields}  (use {{{{ name }}}})"), classes="hint")
            yield EditorWarning(self.revision.number, id="editor-warning")
            yield Static("", id="editor-newer")
            with Horizontal(id="subject-row"):
                yield Static("Subject", classes="field-label")
                # Input and TextArea draw what they hold as it is: a control character saved
                # before templates refused them would reach the terminal, so it is shown
                # written out (and saved that way, visibly, if the operator saves).
                yield Input(self.opened.subject, id="subject", compact=True)
            with TabbedContent(id="parts"):
                with TabPane("Text body", id="text-part"):
                    yield TextArea(self.opened.text, id="body", soft_wrap=True, show_line_numbers=True)
                with TabPane(self._html_label(), id="html-part"):
                    yield Static(NO_HTML, id="no-html", classes="hint")
                    yield TextArea(self.opened.html or "", id="html", soft_wrap=True, show_line_numbers=True)
            yield Static("", id="editor-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save revision (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Back (esc)", id="back", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#no-html").display = self.opened.html is None
        self.query_one("#editor-newer").display = False
        self.app.refresh_views()  # type: ignore[attr-defined]
        self.query_one("#subject", Input).focus()

    def _title(self) -> Text:
        title = Text(f"Template of mailing {self.mailing.id} ")
        title.append(fmt.plain(self.mailing.name, style="bold"))
        title.append(f": editing revision {self.revision.number}; saving creates revision {self.revision.number + 1}")
        return title

    def _html_label(self) -> str:
        return "HTML body" if self.opened.html is not None else "HTML body (none)"

    # -- the parts, as edited (a preview reads these too) ---------------------------

    @property
    def subject(self) -> str:
        return self.query_one("#subject", Input).value

    @property
    def body(self) -> str:
        return self.query_one("#body", TextArea).text

    @property
    def html(self) -> str | None:
        """The HTML body; None when it is empty (the mail is then text only)."""
        return self.query_one("#html", TextArea).text or None

    @property
    def edited(self) -> Parts:
        return Parts(self.subject, self.body, self.html)

    @property
    def dirty(self) -> bool:
        return self.edited != self.opened

    def show_error(self, message: str) -> None:
        self.query_one("#editor-error", Static).update(Text(message))

    @property
    def error(self) -> str:
        return str(self.query_one("#editor-error", Static).render())

    def action_preview(self) -> None:
        """The message as this edit would render it, before anything is saved (a recipient of the operator's choice)."""
        self.app.push_screen(PreviewScreen(self.mailing.id, parts=self.edited))

    def action_switch_part(self) -> None:
        tabs = self.query_one("#parts", TabbedContent)
        tabs.active = "html-part" if tabs.active == "text-part" else "text-part"
        self.query_one("#html" if tabs.active == "html-part" else "#body", TextArea).focus()

    # -- checked as the operator types ------------------------------------------------

    @on(Input.Changed, "#subject")
    @on(TextArea.Changed)
    def _edited(self) -> None:
        self.query_one("#no-html").display = self.opened.html is None and not self.html
        if not self.dirty and not self.error:
            return  # the saved revision, nothing shown to clear (the Input says Changed on mount too)
        if self._check_timer is not None:
            self._check_timer.stop()
        self._check_timer = self.set_timer(self.CHECK_DELAY, self._check_now)

    def _check_now(self) -> None:
        self._check_timer = None
        self._check(self.edited, self._checked)

    @work(thread=True, group="template-check", exit_on_error=False)
    def _check(self, parts: Parts, then: Callable[[Parts, str | None], None]) -> None:
        """Off the UI thread: a big template takes a moment to parse, and the stop key must not wait."""
        problem = template_problem(parts, self.mailing.fields)
        try:
            self.app.call_from_thread(then, parts, problem)
        except RuntimeError:
            pass  # the app is closing

    def _checked(self, parts: Parts, problem: str | None) -> None:
        if self not in self.app.screen_stack:
            return  # closed while the check ran
        if parts == self.edited:  # an older check than what is on screen now says nothing
            self.show_error(problem or "")

    # -- saving ------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        edit = self.edited
        if edit == self.opened:
            self.show_error("Nothing changed: no new revision saved.")
            return
        self._check(edit, self._checked_for_save)

    def _checked_for_save(self, edit: Parts, problem: str | None) -> None:
        if self not in self.app.screen_stack:
            return
        if problem is not None:
            self.show_error(problem)
            return
        unchanged = unchanged_parts(self.opened, edit)
        html_removed = self.opened.html is not None and edit.html is None
        if not unchanged and not html_removed:
            self._save(edit)
            return
        what = [f"{' and '.join(p.title for p in unchanged)} unchanged"] if unchanged else []
        what += ["HTML body removed"] if html_removed else []
        body = unchanged_warning(changed_titles(self.opened, edit), unchanged, self.revision.number + 1, html_removed)
        self.app.push_screen(
            ConfirmScreen(f"{', '.join(what)}: save anyway?", body, "Save anyway", danger=False),
            lambda yes: self._save(edit) if yes else None,
        )

    def _save(self, edit: Parts, overriding: int | None = None) -> None:
        self.show_error("")
        self.app.save_template(self, edit, overriding)  # type: ignore[attr-defined]

    def conflict(self, latest: Revision, edit: Parts) -> None:
        """The store refused the save: `latest` was saved since this editor opened its revision."""

        def chosen(choice: Choice | None) -> None:
            if choice == "override":
                self._save(edit, overriding=latest.number)
            elif choice == "theirs":
                self.load(latest)
            else:
                self.newer = latest
                newer = self.query_one("#editor-newer", Static)
                newer.display = True
                newer.update(Text(
                    f"⚠ Revision {latest.number} ({latest.created_by}, {fmt.clock_time(latest.created_at)}) is newer "
                    f"than the revision {self.revision.number} you opened; saving asks again.",
                ))

        self.app.push_screen(ConflictScreen(self.revision.number, latest, edit), chosen)

    def load(self, revision: Revision) -> None:
        """Show `revision` in place of the edit (the operator took theirs), and base the next save on it."""
        self.revision = revision
        self.opened = revision_parts(revision)
        self.newer = None
        self.query_one("#editor-title", Static).update(self._title())
        self.query_one("#editor-newer", Static).display = False
        self.query_one(EditorWarning).revision = revision.number
        self.query_one("#subject", Input).value = self.opened.subject
        self.query_one("#body", TextArea).text = self.opened.text
        self.query_one("#html", TextArea).text = self.opened.html or ""
        self.query_one("#parts", TabbedContent).get_tab("html-part").label = self._html_label()
        self.show_error("")
        self.app.refresh_views()  # type: ignore[attr-defined]

    # -- leaving ------------------------------------------------------------------------

    @on(Button.Pressed, "#back")
    def action_close(self) -> None:
        if not self.dirty:
            self.dismiss(None)
            return
        body = Text(f"You changed: {in_sentence(changed_titles(self.opened, self.edited))}.\n"
                    "Discarding saves nothing; the mailing keeps revision "
                    f"{self.revision.number}.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmScreen("Discard your changes?", body, "Discard"), answered)
