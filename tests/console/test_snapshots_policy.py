"""Snapshots of the automatic-pause banner and the policy dialog, at two sizes."""

from __future__ import annotations

import pytest

from .pilot import keys_pressed, settle
from .test_auto_pause_banner import trip

SIZES = [(80, 24), (120, 36)]


def _tripped(*keys: str):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        trip(pilot.app.store)
        pilot.app.poll()
        await settle(pilot)
        await keys_pressed(*keys)(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_with_an_automatic_pause_not_acknowledged(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    """The banner under the state: what was paused, the window's figures, the top reply, the key; Ack in the footer."""
    assert snap_compare(make_app(), run_before=_tripped(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_analytics_with_an_automatic_pause_not_acknowledged(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    """The same banner on another tab; the mailing shows paused."""
    assert snap_compare(make_app(), run_before=_tripped("2"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_policy_dialog(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    """P in Settings: the current policy, the keys, a value typed."""
    assert snap_compare(make_app(), run_before=keys_pressed("P", *"max_permanent=5%"), terminal_size=size)
