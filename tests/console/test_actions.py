"""Operator actions through the keyboard: each asks where it must and changes the store."""

from __future__ import annotations

import re

from rich.console import Console
from textual.command import CommandPalette
from textual.widgets import Checkbox, Input, TextArea

from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.console.editor import TemplateEditor
from mailconsole.console.help_screen import HelpScreen, keys_table
from mailconsole.console.keys import ACTIONS
from mailconsole.console.modals import ConfirmScreen
from mailconsole.store import accounts, audit, mailings, revisions

from .pilot import drive, press, screen_text, settle

SALE, PREPARING, OLD_LIST, FIRST_PLANNED = 3, 7, 2, 4


async def select(pilot, mailing_id: int) -> None:  # type: ignore[no-untyped-def]
    table = pilot.app.query_one(MailingsTable)
    table.move_cursor(row=table.get_row_index(str(mailing_id)))
    await press(pilot)


def rows(app) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(r.key.value) for r in app.query_one(MailingsTable).ordered_rows]


def test_resume_confirms_with_the_preview(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "R")
        assert isinstance(app.screen, ConfirmScreen)
        # The paused, planned and preparing mailings' 87 are held, not "will be sent".
        assert "17 will be sent now, 0 suspended by the 7-day rule, 87 held." in screen_text(app)
        await press(pilot, "n")
        assert accounts.state(app.store).stopped
        await press(pilot, "R", "y")
        assert not accounts.state(app.store).stopped
        assert not app.query_one("#banner").has_class("-stopped")

    drive(app, script)


def test_delete_confirms_what_is_dropped(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        await press(pilot, "d")
        body = str(app.screen.query_one(".dialog-body").render())
        assert re.search(r"already sent +31", body) and re.search(r"unsent, to drop +17", body), body
        await press(pilot, "escape")
        assert SALE in rows(app)
        await press(pilot, "d", "y")
        assert SALE not in rows(app)
        assert SALE not in [m.id for m in mailings.list_mailings(app.store, planned=True)]
        assert audit.entries(app.store, limit=1)[0].details["dropped"] == 17

    drive(app, script)


def test_a_preparing_mailing_can_be_deleted(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, PREPARING)
        await press(pilot, "delete", "y")
        assert PREPARING not in rows(app)

    drive(app, script)


def test_show_planned_also(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        assert FIRST_PLANNED not in rows(app)
        await press(pilot, "a")
        assert app.query_one("#show-planned", Checkbox).value
        assert FIRST_PLANNED in rows(app) and 5 in rows(app)
        await press(pilot, "a")
        assert FIRST_PLANNED not in rows(app)

    drive(app, script)


def test_pause_and_unpause(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        await press(pilot, "p")
        assert mailings.get_mailing(app.store, SALE).status == "paused"
        assert app.query_one(MailingsTable).selected_key == str(SALE)  # the cursor stays put
        await press(pilot, "p")
        assert mailings.get_mailing(app.store, SALE).status == "sending"

    drive(app, script)


def test_template_edit_save_and_validation(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        await press(pilot, "e")
        editor = app.screen
        assert isinstance(editor, TemplateEditor)
        editor.query_one("#subject", Input).value = "Hello {{ nickname }}"
        await press(pilot, "ctrl+s")
        error = str(editor.query_one("#editor-error").render())
        assert "nickname" in error
        assert app.screen is editor and revisions.newest_revision(app.store, SALE).number == 2
        editor.query_one("#subject", Input).value = "Spring sale for {{ first_name }}: 50% off"
        editor.query_one("#body", TextArea).text = "Hi {{ first_name }}!\n"
        await press(pilot, "ctrl+s")
        assert not isinstance(app.screen, TemplateEditor)
        rev = revisions.newest_revision(app.store, SALE)
        assert rev.number == 3 and rev.subject.startswith("Spring sale for") and rev.text_body == "Hi {{ first_name }}!\n"
        assert "revision 3: 0 sent" in str(app.query_one("#revisions").render())

    drive(app, script)


def test_editor_warns_while_running(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        await press(pilot, "e")
        warning = app.screen.query_one("#editor-warning")
        assert warning.display and "going out with revision 2" in str(warning.render())
        await press(pilot, "escape")
        assert not isinstance(app.screen, TemplateEditor)

    drive(app, script)


def test_requeue_suspended(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, OLD_LIST)
        await press(pilot, "u")
        m = mailings.get_mailing(app.store, OLD_LIST)
        assert m.suspended == 0 and m.queued == 10

    drive(app, script)


def test_reschedule_planned(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "3", "t")
        box = app.screen.query_one("#when", Input)
        box.value = "not a time"
        await press(pilot, "enter")
        assert "not a time" in str(app.screen.query_one("#when-error").render())
        box.value = "2026-12-24 08:00"
        await press(pilot, "enter")
        assert mailings.get_mailing(app.store, FIRST_PLANNED).scheduled_at == 1798099200.0

    drive(app, script)


def test_help_lists_every_binding(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    console = Console(width=200, record=True)
    console.print(keys_table())
    help_text = console.export_text()
    for binding in app.BINDINGS:  # type: ignore[union-attr]
        spec = next((a for a in ACTIONS if a.action == binding.action), None)
        if binding.action == "emergency_stop_bare":
            assert "F2 or !" in help_text
            continue
        assert spec is not None and spec.shown in help_text and spec.title in help_text
    assert "ctrl+p" in help_text

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)

    drive(app, script)


def test_palette_runs_actions(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"STOP ALL")
        await pilot.pause(0.5)
        await press(pilot, "enter")
        assert accounts.state(app.store).stopped

    drive(app, script)


def test_filter(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "slash", *"sale")
        assert rows(app) == [SALE]
        await press(pilot, "enter")
        assert app.focused is app.query_one(MailingsTable) and rows(app) == [SALE]
        await press(pilot, "escape")
        assert len(rows(app)) == 5 and not app.query_one("#filter").display

    drive(app, script)


def test_data_is_shown_as_text_not_markup(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        cell = app.query_one(MailingsTable).get_cell("6", "name")
        assert cell.plain == "[bold red]Markup[/] \\x1b[31mname"

    drive(app, script)


def test_an_engine_that_cannot_send_says_why_on_the_settings_tab(make_app) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store import engines

    from .builder import ENGINE

    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        problems = app.query_one("#engine-problems")
        assert problems.size.height == 0  # nothing wrong: no line at all
        note = "cannot connect to relay.internal:25: Connection refused (tried 3x; next try in 4 s; messages are kept)"
        engines.beat(app.store, ENGINE, note=note)
        app.poll()
        await settle(pilot)
        assert problems.size.height >= 1
        assert "mail-1 pid 4242: cannot connect to relay.internal:25" in str(problems.render())
        assert "1 cannot send (see Settings)" in str(app.query_one("#banner").render())
        engines.beat(app.store, ENGINE, note=None)
        app.poll()
        await settle(pilot)
        assert problems.size.height == 0
        assert "cannot send" not in str(app.query_one("#banner").render())

    drive(app, script)


def test_a_read_only_console_refuses_every_mailing_action(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(read_only=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        before = mailings.get_mailing(app.store, SALE)
        for key in ("d", "p", "e"):
            await press(pilot, key)
            assert not isinstance(app.screen, (ConfirmScreen, TemplateEditor)), key
        messages = [str(n.message) for n in app._notifications]
        assert sum("Read-only console" in m for m in messages) == 3, messages
        after = mailings.get_mailing(app.store, SALE)
        assert (after.status, after.queued) == (before.status, before.queued)

    drive(app, script)


def test_requeue_failed_confirms_with_the_count(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        before = mailings.get_mailing(app.store, SALE)
        await press(pilot, "f")
        assert isinstance(app.screen, ConfirmScreen)
        assert "2 failed messages go back in the queue" in str(app.screen.query_one(".dialog-body").render())
        await press(pilot, "n")
        assert mailings.get_mailing(app.store, SALE).failed == 2
        await press(pilot, "f", "y")
        m = mailings.get_mailing(app.store, SALE)
        assert (m.failed, m.queued) == (0, before.queued + 2)
        assert audit.entries(app.store, limit=1)[0].details["requeued"] == 2

    drive(app, script)


def test_requeue_failed_is_in_help_and_refused_read_only(make_app) -> None:  # type: ignore[no-untyped-def]
    assert any(a.action == "requeue_failed" and a.keys == "f" for a in ACTIONS)
    app = make_app()
    app.read_only = True

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        await select(pilot, SALE)
        await press(pilot, "f")
        assert not isinstance(app.screen, ConfirmScreen)
        assert mailings.get_mailing(app.store, SALE).failed == 2

    drive(app, script)


def test_a_mailing_of_which_nothing_went_out_shows_failed(make_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.console.app import MailConsole
    from mailconsole.store import importer, queue

    from .builder import FIXED, OPERATOR

    store = make_store()
    csv = tmp_path / "failing.csv"
    csv.write_text("email,first_name\n" + "".join(f"f{i}@example.net,F{i}\n" for i in range(3)), encoding="utf-8")
    mid = importer.create_mailing(store, OPERATOR, name="All failed", sender="news@shop.example", subject="Hi",
                                  text_body="Hello\n", html_body=None, recipients=csv).mailing_id
    claimed = [c for c in queue.claim(store, "e", 100, 1e9) if c.mailing_id == mid]
    queue.record(store, "e", [queue.Outcome(c.id, mid, "failed", error="x", fail_kind="template") for c in claimed])
    app = MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        cell = app.query_one(MailingsTable).get_cell(str(mid), "status")
        assert str(cell) == "failed" and "red" in str(cell.style)

    drive(app, script)
