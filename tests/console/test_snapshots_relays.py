"""Snapshots of the Settings tab with a relay agent reporting, while stopped, at two sizes."""

from __future__ import annotations

import pytest

from mailconsole.store import accounts, relays

from .builder import FIXED
from .pilot import press, settle

SIZES = [(80, 24), (120, 36)]


def _with_relay(note: str | None, *, honoured: bool = True):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        app = pilot.app
        state = accounts.state(app.store)
        ack = relays.StopAck(state.generation - (0 if honoured else 1), held=1482, in_delivery=9, delivered_after=9, bounced_after=1, at=FIXED)
        relays.beat(app.store, "relay-mx1-77-a1b2c3", acknowledged={state.id: ack}, counts={"held": 1482},
                    host="mx1", pid=77, kind="postfix", relay="10.0.0.5:25", started_at=FIXED - 600,
                    state="running", queue_size=1490, note=note)
        app.poll()
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_with_a_relay_that_honoured_the_stop(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The relays section: held, in delivery at the stop, delivered and bounced after it, honoured."""
    assert snap_compare(make_app(True), run_before=_with_relay(None), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_with_a_relay_that_cannot_act(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """A relay agent that cannot hold: its problem above its row, the stop not honoured, not quiescent."""
    note = "cannot act at the relay: postsuper -h: fatal: use of this command is reserved for the superuser"
    assert snap_compare(make_app(True), run_before=_with_relay(note, honoured=False), terminal_size=size)


async def _tab_to_relays(pilot) -> None:  # type: ignore[no-untyped-def]
    await _with_relay(None)(pilot)
    await press(pilot, "tab")  # from the engines table to the relays table: scrolled into view


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_relays_reached_by_key(snap_compare, make_app, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """At 80x24 the relays table is below the fold: tab brings it (and its row) into view."""
    assert snap_compare(make_app(True), run_before=_tab_to_relays, terminal_size=size)
