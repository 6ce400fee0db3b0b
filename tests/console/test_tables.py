"""The tables as an operator uses them in an incident: focus, truth after a stop, empty, sort, names, copy."""

from __future__ import annotations

import base64
import gc
from pathlib import Path

from textual.command import CommandList
from textual.widgets import Checkbox
from textual.widgets._footer import FooterKey

from store_backend import store_at
from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.console.app import MailConsole
from mailconsole.console.modals import ConfirmScreen
from mailconsole.console.tables import LiveTable
from mailconsole.store import Store

from .builder import FIXED, OPERATOR
from .conftest import HOST, STORE_LABEL
from .pilot import drive, press, screen_text, settle

SALE = 3  # "Spring sale": sending, 2 in flight, the engine at 123.4 msg/s


def keys(table: LiveTable) -> list[str]:
    return [str(r.key.value) for r in table.ordered_rows]


def labels(table: LiveTable) -> list[str]:
    return [str(c.label) for c in table.ordered_columns]


def cell(table: LiveTable, key: str, column: str) -> str:
    return str(table.get_cell(key, column))


# -- focus after a tab switch --------------------------------------------------------


def test_after_a_tab_key_the_arrows_move_the_rows_that_delete_acts_on(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        table = app.query_one(MailingsTable)
        assert app.focused is table
        third = table.ordered_rows[2].key.value
        name = app.snapshot.mailing(int(third)).name
        await press(pilot, "down", "down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        assert name in screen_text(app)
        assert app.selected_mailing() == int(third)

    drive(app, script)


def test_each_tab_key_and_a_click_focus_that_tab_s_table(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        for key, table in (("3", "#planned-tab LiveTable"), ("4", "#audit-tab LiveTable"), ("1", "#engines"), ("2", "#mailings")):
            await press(pilot, key)
            assert app.focused is app.query_one(table, LiveTable), key
        await pilot.click("#--content-tab-planned")
        await settle(pilot)
        assert app.focused is app.query_one("#planned-tab LiveTable", LiveTable)
        await press(pilot, "down")
        assert app.selected_mailing() == int(keys(app.query_one("#planned-tab LiveTable", LiveTable))[1])

    drive(app, script)


def test_the_filter_keeps_the_keys_typed_right_after_slash(make_app) -> None:  # type: ignore[no-untyped-def]
    """The tab switch that `/` makes must not pull the focus back to the table."""
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "slash", "s", "a", "l")
        assert app.query_one("#filter").value == "sal"

    drive(app, script)


# -- the first frame after a stop ------------------------------------------------------


def test_the_frame_after_the_stop_shows_held_rows_and_no_rate_without_a_new_read(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        app.rates.per_mailing[SALE] = 39.9
        app.refresh_views()
        table = app.query_one(MailingsTable)
        assert cell(table, str(SALE), "status") == "sending" and cell(table, str(SALE), "rate") == "39.9"
        assert "123 msg/s" in str(app.query_one("#rate-now").render())
        before = app.snapshot
        app._reading = True  # a read is under way (a slow store): no new snapshot can land meanwhile
        await pilot.press("f2")
        while not app.stop_pending:
            await pilot.pause(0.01)
        await pilot.pause()
        assert app.snapshot is before and not before.stopped
        assert cell(table, str(SALE), "status") == "held"
        assert cell(table, str(SALE), "rate") == "0"
        assert str(app.query_one("#rate-now").render()) == "0 msg/s"
        assert "in flight 2 draining" in str(app.query_one("#queue-eta").render())
        app._reading = False

    drive(app, script)


# -- empty tables ------------------------------------------------------------------------


def _empty_app(tmp_path: Path) -> MailConsole:
    store = Store(store_at(tmp_path / "empty.db"), clock=lambda: FIXED)
    return MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None, host=HOST,
                       store_label=STORE_LABEL)


def test_empty_tables_say_why(tmp_path: Path) -> None:
    app = _empty_app(tmp_path)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        assert "No engine is running" in screen_text(app)
        await press(pilot, "2")
        assert "No mailings yet: create one with `mailconsole create`." in screen_text(app)
        await press(pilot, "3")
        assert "No planned mailings." in screen_text(app)
        await press(pilot, "4")
        assert "No operator action recorded yet." in screen_text(app)

    drive(app, script)


def test_a_filter_that_matches_nothing_says_so_and_how_to_clear_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "slash", "x", "y", "z")
        assert "No mailing matches the filter 'xyz' (esc clears)." in screen_text(app)
        await press(pilot, "escape")
        assert "No mailing matches" not in screen_text(app)

    drive(app, script)


def test_show_planned_also_says_its_state_in_words(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        assert "show planned also: no (a)" in screen_text(app)
        await press(pilot, "a")
        assert app.query_one("#show-planned", Checkbox).value
        assert "show planned also: yes (a)" in screen_text(app)

    drive(app, script)


# -- the command palette -----------------------------------------------------------------


async def _palette(pilot) -> list[str]:  # type: ignore[no-untyped-def]
    await press(pilot, "ctrl+p")
    await pilot.pause(0.3)
    await settle(pilot)
    hits = pilot.app.screen.query_one(CommandList)
    prompts = [str(hits.get_option_at_index(i).prompt).split("\n")[0] for i in range(hits.option_count)]
    await press(pilot, "escape")
    return prompts


def test_the_palette_lists_the_incident_actions_first_naming_the_mailing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2", "down", "down")
        prompts = await _palette(pilot)
        assert [p.split(" ")[0] for p in prompts[:6]] == ["STOP", "Resume…", "Delete", "Pause", "Edit", "Mailing"]
        assert prompts[2] == "Delete mailing… — mailing 3 'Spring sale'  (d / Del)"
        assert prompts.index("Theme") > prompts.index("Quit  (q)")
        await press(pilot, "1")  # no mailing rows on this tab: the palette says so
        prompts = await _palette(pilot)
        assert prompts[2] == "Delete mailing… — (select a mailing first)  (d / Del)"

    drive(app, script)


# -- audit ---------------------------------------------------------------------------------


def test_audit_shows_the_full_utc_time_how_long_ago_and_the_ssh_client(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "4")
        table = app.query_one("#audit-tab LiveTable", LiveTable)
        assert labels(table)[:3] == ["Time", "Who", "SSH client"]
        newest = keys(table)[0]
        assert cell(table, newest, "at") == "2026-09-21 14:13:20 UTC (0s ago)"
        assert cell(table, newest, "who") == "alice" and cell(table, newest, "ssh") == "203.0.113.7"

    drive(app, script, size=(160, 30))


# -- sort --------------------------------------------------------------------------------------


def test_s_sorts_by_each_column_S_reverses_and_the_selection_stays(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        table = app.query_one(MailingsTable)
        natural = keys(table)
        table.move_cursor(row=table.get_row_index(str(SALE)))
        await press(pilot, "s")
        assert labels(table)[0] == "ID ▲"
        assert keys(table) == sorted(natural, key=int)
        assert table.selected_key == str(SALE) and app.focused is table
        await press(pilot, "S")
        assert labels(table)[0] == "ID ▼" and keys(table) == sorted(natural, key=int, reverse=True)
        assert table.selected_key == str(SALE)
        await press(pilot, "s")  # the next column: names, A to Z
        assert labels(table)[:2] == ["ID", "Mailing ▲"]
        names = [app.snapshot.mailing(int(k)).name.casefold() for k in keys(table)]
        assert names == sorted(names)
        app.poll()  # a live refresh keeps the sort
        await settle(pilot)
        assert [app.snapshot.mailing(int(k)).name.casefold() for k in keys(table)] == names
        assert table.selected_key == str(SALE)

    drive(app, script)


def test_a_click_on_a_header_sorts_and_a_second_click_reverses(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        table = app.query_one(MailingsTable)
        sent_x = sum(c.get_render_width(table) for c in table.ordered_columns[:4]) + 2
        await pilot.click(table, offset=(sent_x, 0))
        await settle(pilot)
        assert "Sent ▲" in labels(table)
        sent = [app.snapshot.mailing(int(k)).sent for k in keys(table)]
        assert sent == sorted(sent)
        await pilot.click(table, offset=(sent_x, 0))
        await settle(pilot)
        assert "Sent ▼" in labels(table)

    drive(app, script)


def test_every_tab_s_table_sorts(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        for tab, table_id in (("1", "#engines"), ("3", "#planned-tab LiveTable"), ("4", "#audit-tab LiveTable")):
            await press(pilot, tab, "s")
            table = app.query_one(table_id, LiveTable)
            assert labels(table)[0].endswith(" ▲"), tab
        audit = app.query_one("#audit-tab LiveTable", LiveTable)
        assert keys(audit) == sorted(keys(audit), key=lambda k: (cell(audit, k, "at"), 0))

    drive(app, script)


# -- full names ------------------------------------------------------------------------------


def test_w_widens_the_name_column_to_full_names(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        assert "Reactivation (old list)" not in screen_text(app)
        await press(pilot, "w")
        assert "Reactivation (old list)" in screen_text(app)
        await press(pilot, "w")
        assert "Reactivation (old list)" not in screen_text(app)

    drive(app, script, size=(120, 30))


def test_planned_shows_the_selected_mailing_s_full_name_under_the_table(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "3")
        line = str(app.query_one("#planned-selected").render())
        assert line.startswith("Black Friday preview (mailing 4): starts 2026-09-22 16:13:20 UTC, in 1d 2h")

    drive(app, script)


# -- 60x20 --------------------------------------------------------------------------------------


def test_a_small_terminal_keeps_stop_help_quit_and_the_counts_that_matter(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        assert app.has_class("-compact")
        shown = [k.description for k in app.screen.query(FooterKey) if k.display]
        assert shown[:3] == ["STOP ALL", "Help", "Quit"] and "Filter" not in shown
        table = app.query_one(MailingsTable)
        assert [c.key.value for c in table.ordered_columns] == ["id", "name", "status", "sent", "queued", "failed"]
        text = screen_text(app)
        assert "STOP ALL" in text and "Help" in text and "Quit" in text
        await pilot.resize_terminal(120, 36)
        await settle(pilot)
        assert not app.has_class("-compact") and "rate" in [c.key.value for c in table.ordered_columns]
        await press(pilot, "slash")  # hidden from the footer, still a key
        assert app.focused is app.query_one("#filter")

    drive(app, script, size=(60, 20))


# -- copy ----------------------------------------------------------------------------------------


def test_c_copies_the_selected_mailing_id_with_osc_52(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        written: list[str] = []
        driver = app._driver
        real = driver.write
        driver.write = lambda data: (written.append(data), real(data))[1]
        await press(pilot, "2", "down", "down", "c")
        assert app.clipboard == str(SALE)
        assert f"\x1b]52;c;{base64.b64encode(str(SALE).encode()).decode()}\a" in written
        toasts = [n.message for n in app._notifications]
        assert any("Copied mailing id 3" in t and "OSC 52" in t for t in toasts), toasts

    drive(app, script, size=(120, 36))


# -- rows given before the table is mounted ---------------------------------------------


def test_rows_given_before_the_table_is_mounted_are_shown_once_it_is() -> None:
    """A read can land while a screen is being put up (the account picker after ctrl+a):
    sync then came before the columns existed and raised, on whichever thread drew."""
    from textual.app import App

    table = LiveTable((("name", "Name", None), ("state", "State", None)))
    table.sync({"a": ("alpha", "RUNNING"), "b": ("beta", "STOPPED")}, ["a", "b"])  # not mounted yet

    class One(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield table

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()
        assert keys(table) == ["a", "b"] and cell(table, "b", "state") == "STOPPED"

    drive(One(), script)


# -- memory over a session ------------------------------------------------------------


def alive(*classes: type) -> list[int]:
    """Objects of each class still alive after a full collection."""
    gc.collect()
    objects = gc.get_objects()
    return [sum(1 for o in objects if isinstance(o, c)) for c in classes]


def test_the_footer_s_rebuilds_leave_no_old_keys_alive(make_app) -> None:  # type: ignore[no-untyped-def]
    """Each rebuild of the footer (here: the terminal resized across the compact layout's
    threshold; in a session also every change of the keys it shows) must let the keys it
    removed go. Textual's Footer kept each one (its data binding's watcher), with its
    styles and render caches: memory that grew with every rebuild, and a garbage
    collector's pass that grew with it."""
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        counts = []
        for _ in range(8):
            await pilot.resize_terminal(60, 20)  # compact
            await settle(pilot)
            await pilot.resize_terminal(100, 30)
            await settle(pilot)
            counts.extend(alive(FooterKey))
        shown = len(app.screen.query(FooterKey))
        assert shown > 0
        # The keys shown, and at most those of the rebuild before (still closing).
        assert max(counts) <= 2 * shown + 2, (counts, shown)

    drive(app, script)


def test_widgets_drawn_and_gone_leave_no_render_caches_alive(make_app) -> None:  # type: ignore[no-untyped-def]
    """Tabs and dialogs drawn anew on each key must not keep the render caches of the
    widgets they replaced. Textual's `StylesCache.get_inner_outer` (an lru_cache on a
    method: textual_fixes.py) kept up to 1,024 of them, each with every line it drew."""
    from textual._styles_cache import StylesCache
    from textual.widget import Widget

    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        for _ in range(6):  # each round mounts the help screen's and the detail view's widgets anew
            await press(pilot, "question_mark")
            await settle(pilot)
            await press(pilot, "escape")
            await press(pilot, "2", "enter")
            await settle(pilot)
            await press(pilot, "escape", "1")
            await settle(pilot)
        caches, widgets = alive(StylesCache, Widget)
        # One per widget alive (each widget has its own); none of the widgets gone.
        assert caches <= widgets, (caches, widgets)

    drive(app, script)
