"""Export who got a revision from the detail view (x): the file, the clipboard, a replaced file asked first."""

from __future__ import annotations

import csv
from pathlib import Path

from textual.widgets import Input, Select

from mailconsole.console.export_dialog import ExportScreen
from mailconsole.console.modals import ConfirmScreen
from mailconsole.store import recipients

from .pilot import drive, press
from .test_detail import SALE, open_detail


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_x_exports_the_revision_under_the_cursor_and_copies_the_path(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    target = tmp_path / "wrong-mail.csv"

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await press(pilot, "down")  # newest first: revision 1, the faulty one
        await press(pilot, "x")
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        box = dialog.query_one("#export-path", Input)
        assert box.value == "mailing-3-revision-1-sent.csv"
        box.value = str(target)
        await press(pilot, "enter")
        assert not isinstance(app.screen, ExportScreen)
        assert app.clipboard == str(target.resolve())

    drive(app, script)
    rows = _rows(target)
    expected = list(recipients.iter_recipients(app.store, SALE, revision=1, state="sent"))
    assert len(rows) == len(expected) == 26
    assert [r["email"] for r in rows] == [e.email for e in expected]
    assert {r["revision"] for r in rows} == {"1"} and all(r["message_id"].startswith("<") for r in rows)


def test_an_existing_file_is_replaced_only_after_asking(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    target = tmp_path / "queued.csv"
    target.write_text("keep me\n")

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await press(pilot, "x")
        dialog = app.screen
        dialog.query_one("#export-state", Select).value = "queued"
        await press(pilot)
        dialog.query_one("#export-path", Input).value = str(target)
        await press(pilot, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "enter")  # Cancel has the focus: nothing written
        assert target.read_text() == "keep me\n"
        await press(pilot, "x")
        app.screen.query_one("#export-state", Select).value = "queued"
        await press(pilot)
        app.screen.query_one("#export-path", Input).value = str(target)
        await press(pilot, "enter", "y")

    drive(app, script)
    rows = _rows(target)
    assert len(rows) == 15 and {r["state"] for r in rows} == {"queued"}


def test_a_directory_that_does_not_exist_is_said_and_nothing_is_written(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    messages: list[str] = []

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        real = app.notify
        app.notify = lambda message, **kw: (messages.append(message), real(message, **kw))  # type: ignore[method-assign]
        await open_detail(pilot, SALE)
        await press(pilot, "x")
        app.screen.query_one("#export-path", Input).value = str(tmp_path / "nowhere" / "x.csv")
        await press(pilot, "enter")

    drive(app, script)
    assert any(m.startswith("Export not written:") for m in messages), messages
    assert not (tmp_path / "nowhere").exists()
