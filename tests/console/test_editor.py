"""The template editor on the real app and a real store: every part, saves based on the opened
revision, esc that asks, errors that go once fixed."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

from rich.console import Console
from textual.widgets import Button, Input, TabbedContent, TextArea

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.console.edit_conflict import ConflictScreen
from mailconsole.console.editor import TemplateEditor
from mailconsole.console.help_screen import HelpScreen, keys_table
from mailconsole.console.keys import SCREEN_KEYS
from mailconsole.console.modals import ConfirmScreen
from mailconsole.store import Actor, Store, audit, importer, revisions

from .builder import OPERATOR, build
from .pilot import drive, press, screen_text, settle
from .test_actions import SALE, select

BOB = Actor("bob", "198.51.100.4")

SUBJECT_30 = "Spring sale: 30% off for {{ first_name }}"
TEXT_30 = "Hello {{ first_name }},\n\neverything is 30% off today.\n"
HTML_30 = "<p>Hello {{ first_name }},</p>\n<p>everything is <b>30% off</b> today.</p>\n"


def add_sale_with_html(store: Store, folder: Path) -> int:
    """A mailing with subject, text and HTML, all saying 30% off (the issue's mailing)."""
    csv = folder / "html-sale.csv"
    csv.write_text("email,first_name\n" + "".join(f"h{i}@example.org,H{i}\n" for i in range(6)), encoding="utf-8")
    return importer.create_mailing(store, OPERATOR, name="Sale with HTML", sender="news@shop.example",
                                   subject=SUBJECT_30, text_body=TEXT_30, html_body=HTML_30,
                                   recipients=csv).mailing_id


async def until(pilot, condition, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for the editor's debounced check (a timer, then a worker thread) to land."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
        await settle(pilot)


async def open_editor(pilot, mailing_id: int) -> TemplateEditor:  # type: ignore[no-untyped-def]
    await press(pilot, "2")
    await select(pilot, mailing_id)
    await press(pilot, "e")
    editor = pilot.app.screen
    assert isinstance(editor, TemplateEditor)
    return editor


def test_the_html_part_left_unchanged_is_named_before_saving(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: 30% → 20% in subject and text; the HTML still says 30%; the operator is told, fixes it."""
    app = make_app(stopped=True)
    mid = add_sale_with_html(app.store, tmp_path)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, mid)
        assert editor.html == HTML_30 and editor.query_one("#parts", TabbedContent).active == "text-part"
        editor.query_one("#subject", Input).value = SUBJECT_30.replace("30%", "20%")
        editor.query_one("#body", TextArea).text = TEXT_30.replace("30%", "20%")
        await press(pilot, "ctrl+s")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen), "a save leaving the HTML part unchanged went by silently"
        words = str(confirm.query_one(".dialog-body").render())
        assert "HTML body unchanged" in str(confirm.query_one(".dialog-title").render())
        assert "You changed: subject, text body." in words
        assert "Unchanged: HTML body — it still says “30%” (line 2: <p>everything is <b>30% off</b> today.</p>)" in words
        assert app.focused is confirm.query_one("#no", Button)  # Cancel is the default
        await press(pilot, "n")
        assert app.screen is editor and len(revisions.all_revisions(app.store, mid)) == 1  # nothing saved

        await press(pilot, "ctrl+t")  # to the HTML body
        html = editor.query_one("#html", TextArea)
        assert editor.query_one("#parts", TabbedContent).active == "html-part" and app.focused is html
        html.text = HTML_30.replace("30%", "20%")
        await press(pilot, "ctrl+s")
        assert not isinstance(app.screen, (TemplateEditor, ConfirmScreen))  # every part changed: saved at once
        rev = revisions.newest_revision(app.store, mid)
        assert rev.number == 2
        assert (rev.subject, rev.text_body, rev.html_body) == (
            SUBJECT_30.replace("30%", "20%"), TEXT_30.replace("30%", "20%"), HTML_30.replace("30%", "20%"))
        assert audit.entries(app.store, limit=1)[0].details["based_on"] == 1

    drive(app, script)


def test_saving_anyway_keeps_the_unchanged_part(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)
    mid = add_sale_with_html(app.store, tmp_path)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, mid)
        editor.query_one("#subject", Input).value = "Spring sale for {{ first_name }}"
        await press(pilot, "ctrl+s")
        title = str(app.screen.query_one(".dialog-title").render())
        assert title == "Text body and HTML body unchanged: save anyway?"
        # Nothing the subject lost ("30%", "off") is quoted where the other parts do not say it.
        assert "“30% off”" in str(app.screen.query_one(".dialog-body").render())
        await press(pilot, "y")
        rev = revisions.newest_revision(app.store, mid)
        assert (rev.number, rev.subject, rev.text_body, rev.html_body) == (2, "Spring sale for {{ first_name }}",
                                                                           TEXT_30, HTML_30)

    drive(app, script)


def test_a_mailing_without_html_says_so_and_can_get_one(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        assert editor.html is None
        await press(pilot, "ctrl+t")
        assert "HTML body (none)" in screen_text(app)
        assert "has no HTML part: it is sent as text only" in screen_text(app)
        editor.query_one("#subject", Input).value = "Spring sale: 50% off, {{ first_name }}"
        await press(pilot, "ctrl+s")
        # The absent HTML part is not "unchanged"; the text body is.
        assert str(app.screen.query_one(".dialog-title").render()) == "Text body unchanged: save anyway?"
        await press(pilot, "n")
        editor.query_one("#body", TextArea).text = "Hi {{ first_name }}\n"
        editor.query_one("#html", TextArea).text = "<p>Hi {{ first_name }}</p>\n"
        await until(pilot, lambda: not editor.query_one("#no-html").display, "the hint to go")
        await press(pilot, "ctrl+s")
        rev = revisions.newest_revision(app.store, SALE)
        assert (rev.number, rev.html_body) == (3, "<p>Hi {{ first_name }}</p>\n")

    drive(app, script)


def test_esc_with_unsaved_changes_asks_and_keeps_editing_by_default(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        await press(pilot, "end", "x")
        await press(pilot, "escape")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert str(confirm.query_one(".dialog-title").render()) == "Discard your changes?"
        assert "You changed: subject." in str(confirm.query_one(".dialog-body").render())
        assert app.focused is confirm.query_one("#no", Button)
        await press(pilot, "enter")  # Enter by habit: Cancel
        assert app.screen is editor and editor.subject.endswith("everythingx")
        await press(pilot, "escape", "escape")  # esc on the question is Cancel too
        assert app.screen is editor and editor.subject.endswith("everythingx")
        await press(pilot, "escape", "y")
        assert not isinstance(app.screen, (TemplateEditor, ConfirmScreen))
        assert revisions.newest_revision(app.store, SALE).number == 2  # nothing saved

    drive(app, script)


def test_esc_without_changes_closes_at_once(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)
    mid = add_sale_with_html(app.store, tmp_path)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, mid)
        await press(pilot, "end", "x", "backspace", "ctrl+t")  # typed and undone: no change
        assert not editor.dirty
        await press(pilot, "escape")
        assert app.screen is app.screen_stack[0]

    drive(app, script)


def test_a_template_error_goes_once_fixed(make_app) -> None:  # type: ignore[no-untyped-def]
    """Checked as the operator types: shown while wrong, gone once fixed, without saving."""
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        subject = editor.query_one("#subject", Input)
        subject.value = "Hi {{ nickname }}"
        await until(pilot, lambda: "nickname" in editor.error, "the error to show")
        assert editor.error.startswith("subject line 1: unknown merge field 'nickname'")
        await press(pilot, "end", "backspace")  # still wrong ("Hi {{ nickname }" does not parse)
        await until(pilot, lambda: "syntax error" in editor.error, "the new error")
        subject.value = "Hi {{ first_name }}"
        await until(pilot, lambda: editor.error == "", "the fixed error to go")
        assert revisions.newest_revision(app.store, SALE).number == 2  # only checked, not saved

    drive(app, script)


def test_an_error_from_a_save_goes_at_the_next_edit_that_fixes_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        body = editor.query_one("#body", TextArea)
        body.text = "Hello {{ first_name }},\n\n{% if first_name %}Dear friend\nOur news.\n"
        editor.query_one("#subject", Input).value = "Sale for {{ first_name }}"
        await press(pilot, "ctrl+s")
        assert editor.error == "body line 3, column 1: `{% if first_name %}` is never closed (add {% endif %})"
        assert app.screen is editor and revisions.newest_revision(app.store, SALE).number == 2
        body.text = "Hello {{ first_name }},\n\n{% if first_name %}Dear friend{% endif %}\nOur news.\n"
        await until(pilot, lambda: editor.error == "", "the fixed error to go")
        await press(pilot, "ctrl+s")
        assert revisions.newest_revision(app.store, SALE).text_body.count("{% endif %}") == 1

    drive(app, script)


def _two_consoles(path: Path) -> tuple[MailConsole, MailConsole]:
    build(path).close()
    # Separate Store objects, as two processes would have.
    return (MailConsole(Store(store_at(path)), actor=OPERATOR, poll_interval=None),
            MailConsole(Store(store_at(path)), actor=BOB, poll_interval=None))


def test_a_save_in_another_console_meanwhile_is_shown_and_chosen(tmp_path: Path) -> None:
    """Two consoles edit the same template: the second save says so, shows the difference and lets choose."""
    first, second = _two_consoles(tmp_path / "shared.db")

    async def main() -> None:
        async with first.run_test(size=(100, 30)) as one, second.run_test(size=(100, 30)) as two:
            await settle(one)
            await settle(two)
            mine = await open_editor(one, SALE)
            theirs = await open_editor(two, SALE)
            theirs.query_one("#subject", Input).value = "Bob's sale for {{ first_name }}"
            theirs.query_one("#body", TextArea).text = "Bob's body\n"
            await press(two, "ctrl+s")
            assert revisions.newest_revision(second.store, SALE).number == 3

            mine.query_one("#subject", Input).value = "Alice's sale for {{ first_name }}"
            mine.query_one("#body", TextArea).text = "Alice's body\n"
            await press(one, "ctrl+s")
            conflict = first.screen
            assert isinstance(conflict, ConflictScreen), "the second save silently replaced the first"
            said = screen_text(first)
            assert "Revision 3 was saved while you edited" in said
            assert "bob saved revision 3 at" in said and "you opened revision 2" in said
            assert "-Bob's body" in said and "+Alice's body" in said  # from theirs to mine
            assert first.focused is conflict.query_one("#keep", Button)
            assert revisions.newest_revision(first.store, SALE).number == 3  # nothing saved yet

            await press(one, "escape")  # keep editing: my edit is still there
            assert first.screen is mine and mine.body == "Alice's body\n"
            assert "Revision 3 (bob," in str(mine.query_one("#editor-newer").render())
            await press(one, "ctrl+s")  # asks again
            assert isinstance(first.screen, ConflictScreen)
            await press(one, "o")  # save mine over it
            assert not isinstance(first.screen, (TemplateEditor, ConflictScreen))
            rev = revisions.newest_revision(first.store, SALE)
            assert (rev.number, rev.text_body, rev.created_by) == (4, "Alice's body\n", "alice")
            details = audit.entries(first.store, limit=1)[0].details
            assert (details["based_on"], details["overrides"], details["previous"]) == (2, 3, 3)

    asyncio.run(main())


def test_taking_theirs_reloads_the_editor_on_the_newer_revision(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        bobs = revisions.save_revision(app.store, BOB, SALE, subject="Bob's sale for {{ first_name }}")
        editor.query_one("#subject", Input).value = "Alice's sale for {{ first_name }}"
        editor.query_one("#body", TextArea).text = "Alice's body\n"
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, ConflictScreen)
        await press(pilot, "t")
        assert app.screen is editor and editor.revision == bobs
        assert (editor.subject, editor.body) == (bobs.subject, bobs.text_body) and not editor.dirty
        assert "editing revision 3; saving creates revision 4" in str(editor.query_one("#editor-title").render())
        editor.query_one("#body", TextArea).text = "Alice's body on Bob's subject\n"
        await press(pilot, "ctrl+s", "y")  # the subject unchanged: asked, confirmed
        rev = revisions.newest_revision(app.store, SALE)
        assert (rev.number, rev.subject, rev.text_body) == (4, bobs.subject, "Alice's body on Bob's subject\n")
        assert "overrides" not in audit.entries(app.store, limit=1)[0].details

    drive(app, script)


def test_the_editor_keys_are_in_its_footer_and_in_help(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_editor(pilot, SALE)
        footer = screen_text(app).splitlines()[-1]
        for label in ("Save revision", "Text/HTML", "Back", "STOP ALL"):
            assert label in footer
        keys = dict(SCREEN_KEYS)
        assert "ctrl+t" in keys and "asks first" in keys["esc"]
        await press(pilot, "escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        # The help lists more keys than fit on the screen: read all of what it shows.
        wide = Console(width=300, file=io.StringIO(), record=True)
        wide.print(keys_table())  # what the help screen shows, at a width where nothing wraps
        assert "switch between the text body and the HTML body" in wide.export_text()

    drive(app, script, size=(120, 40))


def test_removing_the_html_part_asks_first(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)
    mid = add_sale_with_html(app.store, tmp_path)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, mid)
        editor.query_one("#subject", Input).value = "Spring sale for {{ first_name }}"
        editor.query_one("#body", TextArea).text = "Hi {{ first_name }}\n"
        editor.query_one("#html", TextArea).text = ""
        await press(pilot, "ctrl+s")
        assert str(app.screen.query_one(".dialog-title").render()) == "HTML body removed: save anyway?"
        assert "the mail goes out as text only" in str(app.screen.query_one(".dialog-body").render())
        await press(pilot, "y")
        rev = revisions.newest_revision(app.store, mid)
        assert (rev.number, rev.html_body) == (2, None)

    drive(app, script)


def test_closing_while_a_check_runs_is_harmless(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        editor.query_one("#subject", Input).value = "Hi {{ nickname }}"
        await press(pilot, "escape", "y")  # closed before the debounced check fires
        await asyncio.sleep(editor.CHECK_DELAY * 2)
        await settle(pilot)
        assert app.screen is app.screen_stack[0] and app.is_running

    drive(app, script)


def test_saving_over_a_revision_that_already_says_the_same_saves_nothing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        editor = await open_editor(pilot, SALE)
        revisions.save_revision(app.store, BOB, SALE, subject="Spring sale: 40% off everything")
        editor.query_one("#subject", Input).value = "Spring sale: 40% off everything"
        await press(pilot, "ctrl+s", "y")  # the text body unchanged: asked, confirmed
        assert isinstance(app.screen, ConflictScreen)
        assert "are the same in subject, text and HTML" in screen_text(app)
        await press(pilot, "o")
        assert app.screen is editor and editor.error == "Nothing changed: no new revision saved."
        assert revisions.newest_revision(app.store, SALE).number == 3

    drive(app, script)
