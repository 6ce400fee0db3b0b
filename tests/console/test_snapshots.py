"""Snapshots of every tab, dialog and the editor, running and stopped, at two sizes.

Deterministic by construction: a fixed store, a frozen clock, no polling, no
animations; each run waits for the app's workers before the screenshot.
"""

from __future__ import annotations

import pytest

from mailconsole.console.stopping import StopProgress

from .pilot import keys_pressed, settle

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



@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(snap_compare, make_app, view: str, stopped: bool, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(stopped), run_before=keys_pressed(*VIEWS[view]), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_resume_dialog(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(True), run_before=keys_pressed("R"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_read_only(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(False, read_only=True), run_before=keys_pressed("2"), terminal_size=size)


NARROW = (60, 20)


@pytest.mark.parametrize("view", ["settings", "delete", "editor"])
def test_narrow(snap_compare, make_app, view: str) -> None:  # type: ignore[no-untyped-def]
    """At 60x20 the header still names the store (file name kept), the account and the host."""
    assert snap_compare(make_app(False), run_before=keys_pressed(*VIEWS[view]), terminal_size=NARROW)


STOP_STATES = {
    "busy": StopProgress("busy", "pid 4242: mailconsole template set", 3),
    "failed": StopProgress("failed", "store /var/lib/mailconsole/production/mailconsole.db: disk I/O error", 2),
}


@pytest.mark.parametrize("size", [(80, 24), NARROW], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", list(STOP_STATES))
def test_stop_requested(snap_compare, make_app, state: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """A stop not saved yet: STOP REQUESTED and why, never STOPPED (the state set as a retrying stop sets it)."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        pilot.app.stop_progress = STOP_STATES[state]
        pilot.app.refresh_views()
        await pilot.pause()

    assert snap_compare(make_app(False), run_before=run, terminal_size=size)
