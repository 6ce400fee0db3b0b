"""Snapshots of the tables' new states: compact at 60x20, empty, sorted, full names, the planned toggle.

Deterministic as test_snapshots: a fixed store, a frozen clock, no polling, no animations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.store import Store

from .builder import FIXED, OPERATOR
from .conftest import HOST, STORE_LABEL
from .pilot import keys_pressed

SIZES = [(80, 24), (120, 36)]
NARROW = (60, 20)

VIEWS = {
    "planned_toggle_off": ["2"],
    "planned_toggle_on": ["2", "a"],
    "sorted_by_recipients_descending": ["2", "s", "s", "s", "s", "S"],
    "full_names": ["2", "w"],
    "audit": ["4"],
}
NARROW_VIEWS = {
    "analytics": ["2"],
    "planned": ["3"],
    "audit": ["4"],
}



@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(snap_compare, make_app, view: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The planned toggle in words, a sort shown ▼ in its header, full names, the audit's time and SSH client."""
    assert snap_compare(make_app(False), run_before=keys_pressed(*VIEWS[view]), terminal_size=size)


@pytest.mark.parametrize("view", list(NARROW_VIEWS))
def test_compact(snap_compare, make_app, view: str) -> None:  # type: ignore[no-untyped-def]
    """At 60x20: STOP ALL, help and quit in the footer; id, name, status, sent, queue, fail in the table."""
    assert snap_compare(make_app(False), run_before=keys_pressed(*NARROW_VIEWS[view]), terminal_size=NARROW)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("tab", ["1", "2", "3"])
def test_empty(snap_compare, tmp_path: Path, tab: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """A new store: each table says why it is empty (no engine, no mailing yet, nothing planned)."""
    store = Store(store_at(tmp_path / "empty.db"), clock=lambda: FIXED)
    app = MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None, host=HOST,
                      store_label=STORE_LABEL)
    assert snap_compare(app, run_before=keys_pressed(tab), terminal_size=size)
