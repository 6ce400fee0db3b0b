"""Snapshots of the template editor's parts and questions, at 80x24 and 120x36.

The store is the fixed one plus a mailing with an HTML part (id 8), every
clock frozen; each picture is taken once the app's workers are done.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.store import revisions

from .pilot import settle, still_cursors
from .test_editor import BOB, HTML_30, SUBJECT_30, TEXT_30, add_sale_with_html

SIZES = [(80, 24), (120, 36)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


def _app(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)
    add_sale_with_html(app.store, tmp_path)
    return app


async def _open(pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    table = pilot.app.query_one(MailingsTable)
    table.move_cursor(row=table.get_row_index("8"))
    await pilot.press("e")
    await settle(pilot)
    await still_cursors(pilot)


def _set(pilot, subject: str | None = None, text: str | None = None, html: str | None = None) -> None:  # type: ignore[no-untyped-def]
    editor = pilot.app.screen
    if subject is not None:
        editor.query_one("#subject", Input).value = subject
    if text is not None:
        editor.query_one("#body", TextArea).text = text
    if html is not None:
        editor.query_one("#html", TextArea).text = html


@size_ids
def test_html_part(snap_compare, make_app, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The HTML body on its own tab (ctrl+t), with the keys for it in the footer."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)

    assert snap_compare(_app(make_app, tmp_path), run_before=run, terminal_size=size)


@size_ids
def test_unchanged_part_asks(snap_compare, make_app, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """30% → 20% in subject and text: the save names the HTML part, quoting its line that still says 30%."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot)
        _set(pilot, SUBJECT_30.replace("30%", "20%"), TEXT_30.replace("30%", "20%"))
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(_app(make_app, tmp_path), run_before=run, terminal_size=size)


@size_ids
def test_saved_meanwhile(snap_compare, make_app, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Another save came in: who saved which revision when, the diff to the edit, three choices."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot)
        revisions.save_revision(pilot.app.store, BOB, 8, subject="Spring sale: 25% off for {{ first_name }}")
        _set(pilot, SUBJECT_30.replace("30%", "20%"), TEXT_30.replace("30%", "20%"), HTML_30.replace("30%", "20%"))
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(_app(make_app, tmp_path), run_before=run, terminal_size=size)


@size_ids
def test_unclosed_if(snap_compare, make_app, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """An unclosed {% if %} is named at its opening tag, with line and column."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot)
        _set(pilot, text="Hello {{ first_name }},\n\n  {% if first_name %}everything is 20% off today.\n")
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(_app(make_app, tmp_path), run_before=run, terminal_size=size)


@size_ids
def test_discard_asks(snap_compare, make_app, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Esc with unsaved changes: Discard your changes?, Cancel focused."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot)
        _set(pilot, html=HTML_30.replace("30%", "20%"))
        await pilot.press("escape")
        await settle(pilot)

    assert snap_compare(_app(make_app, tmp_path), run_before=run, terminal_size=size)
