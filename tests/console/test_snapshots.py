"""Snapshots of every tab, dialog and the editor, running and stopped, at two sizes.

Deterministic by construction: a fixed store, a frozen clock, no polling, no
animations; each run waits for the app's workers before the screenshot.
"""

from __future__ import annotations

import pytest

SIZES = [(80, 24), (120, 36)]

# name -> keys pressed before the screenshot
VIEWS = {
    "settings": [],
    "analytics": ["2"],
    "analytics_planned": ["a"],
    "analytics_filter": ["slash", "s", "p", "r"],
    "planned": ["3"],
    "audit": ["4"],
    "help": ["question_mark"],
    "delete": ["2", "down", "down", "d"],
    "editor": ["2", "down", "down", "e"],
    "reschedule": ["3", "t"],
}


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def _press(keys: list[str]):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(snap_compare, make_app, view: str, stopped: bool, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(stopped), run_before=_press(VIEWS[view]), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_resume_dialog(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(True), run_before=_press(["R"]), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_read_only(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(False, read_only=True), run_before=_press(["2"]), terminal_size=size)
