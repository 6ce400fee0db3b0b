"""Every screen says which store, account and host it acts on, at the top, at every size."""

from __future__ import annotations

import socket

import pytest
from textual.command import CommandPalette

from store_backend import store_at
from mailconsole.console.banner import StateBanner
from mailconsole.console.editor import TemplateEditor
from mailconsole.console.header import ContextLine, context_line
from mailconsole.console.help_screen import HelpScreen
from mailconsole.console.modals import ConfirmScreen, TimeScreen

from .conftest import HOST, STORE_LABEL
from .pilot import drive, press, screen_text

# keys from the first screen -> the screen they open
SCREENS = {
    "settings": ([], None),
    "analytics": (["2"], None),
    "filter": (["slash", "s"], None),
    "planned": (["3"], None),
    "audit": (["4"], None),
    "help": (["question_mark"], HelpScreen),
    "delete": (["2", "down", "down", "d"], ConfirmScreen),
    "editor": (["2", "down", "down", "e"], TemplateEditor),
    "reschedule": (["3", "t"], TimeScreen),
    "resume": (["f2", "R"], ConfirmScreen),
    "palette": (["ctrl+p"], CommandPalette),
}


def _top_lines(app) -> tuple[object, object]:  # type: ignore[no-untyped-def]
    """The widgets actually drawn on the first two lines of the screen shown."""
    return app.screen.get_widget_at(2, 0)[0], app.screen.get_widget_at(2, 1)[0]


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_header_is_on_every_screen(make_app, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    keys, kind = SCREENS[screen]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, *keys)
        if kind is not None:
            assert isinstance(app.screen, kind)
        # What the terminal shows on its first two lines, whatever is on top.
        first, second = screen_text(app).splitlines()[:2]
        assert ("■ STOPPED" if screen == "resume" else "● RUNNING") in first, first
        assert "mailconsole.db · " in second and "default" in second and f"{HOST} " in second + " ", second
        if kind is not CommandPalette:  # the palette lets the header show through from below
            banner, context = _top_lines(app)
            assert isinstance(banner, StateBanner) and isinstance(context, ContextLine)

    drive(app, script, size=size)


def test_the_real_store_path_and_host_by_default(make_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.console.app import MailConsole

    store = make_store()
    app = MailConsole(store, "default", poll_interval=None)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        line = str(_top_lines(app)[1].render())
        assert store.where == store_at(tmp_path / "store.db") and line == f"store {store.where} · account default · host {socket.gethostname()}"

    drive(app, script, size=(200, 30))


def test_a_long_path_keeps_its_file_name() -> None:
    assert str(context_line(STORE_LABEL, "default", HOST, 120)) == (
        f"store {STORE_LABEL} · account default · host {HOST}")
    assert str(context_line(STORE_LABEL, "default", HOST, 76)) == (
        f"store …/production/mailconsole.db · account default · host {HOST}")
    assert str(context_line(STORE_LABEL, "default", HOST, 58)) == f"…/production/mailconsole.db · default @ {HOST}"
    assert str(context_line(STORE_LABEL, "default", HOST, 40)) == "…/mailconsole.db · default @ ops-1.exam…"


def test_a_url_shows_without_its_password() -> None:
    from sqlalchemy.engine import make_url

    where = make_url("postgresql://ops:s3cret@db.internal/mail").render_as_string(hide_password=True)
    line = str(context_line(where, "default", HOST, 100))
    assert "s3cret" not in line and "db.internal/mail" in line


def test_an_account_name_cannot_drive_the_terminal() -> None:
    line = str(context_line("/x/m.db", "evil\x1b]0;owned\x07\u202etxt", HOST, 100))
    assert "\x1b" not in line and "\u202e" not in line and "\\x1b]0;owned\\x07\\u202etxt" in line


def test_a_long_url_keeps_its_server_and_database() -> None:
    """Cut at 80 columns the URL once lost the database name; shorter forms keep it."""
    where = "postgresql+psycopg://mailconsole_operator:***@db-primary-1.eu-west.internal:5433/mail_production?sslmode=verify-full"
    full = str(context_line(where, "default", HOST, 200))
    assert full == f"store {where} · account default · host {HOST}"
    assert str(context_line(where, "default", HOST, 120)) == (
        f"store postgresql://db-primary-1.eu-west.internal:5433/mail_production · account default · host {HOST}")
    assert str(context_line(where, "default", HOST, 80)) == (
        f"db-primary-1.eu-west.internal:5433/mail_production · default @ {HOST}")
