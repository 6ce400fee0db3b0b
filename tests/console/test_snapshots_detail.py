"""Snapshots of the mailing detail view, the revision diff, the preview and the test-send dialogs, at two sizes.

Deterministic like test_snapshots.py: the fixed store (with a fixed store id, which
Message-IDs carry), a frozen clock (the preview's Date), no polling, no animations.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.store.identity import KEY
from mailconsole.store.schema import meta

from .pilot import settle, still_cursors

SIZES = [(80, 24), (120, 36)]
SALE = "3"

# name -> keys pressed on the Spring sale's detail view before the screenshot
VIEWS = {
    "detail": [],
    "diff": ["c"],
    "preview": ["v"],
    "test_send": ["s", *"qa@ops.example"],
    "test_send_confirm": ["s", *"qa@ops.example", "enter"],
    "export": ["down", "x"],
}


def _app(make_app, stopped: bool = False):  # type: ignore[no-untyped-def]
    app = make_app(stopped)
    with app.store.write() as conn:
        conn.execute(update(meta).where(meta.c.key == KEY).values(value="fixedstoreid"))
    return app


def _on_detail(keys: list[str]):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("2")
        table = pilot.app.query_one(MailingsTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(SALE))
        for key in ["enter", *keys]:
            await pilot.press(key)
            await settle(pilot)
        await still_cursors(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(snap_compare, make_app, view: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Each screen of the detail view on the running store."""
    assert snap_compare(_app(make_app), run_before=_on_detail(VIEWS[view]), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_stopped(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The detail view says STOPPED in its header, and nothing is in flight."""
    assert snap_compare(_app(make_app, stopped=True), run_before=_on_detail([]), terminal_size=size)
