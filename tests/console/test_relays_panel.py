"""The Settings tab shows each relay agent: what it holds of the current stop, and its problems."""

from __future__ import annotations

import asyncio

from mailconsole.console.settings_tab import RelaysTable, drain_line
from mailconsole.store import accounts, relays

from .builder import FIXED
from .pilot import drive, settle


def _beat(store, generation: int, note: str | None = None) -> None:  # type: ignore[no-untyped-def]
    acc = accounts.state(store).id
    ack = relays.StopAck(generation, held=1234, in_delivery=9, delivered_after=7, bounced_after=2, at=FIXED)
    relays.beat(store, "relay-mx1", acknowledged={acc: ack}, counts={"held": 1234}, host="mx1", pid=77,
                kind="postfix", relay="10.0.0.5:25", started_at=FIXED - 60, state="running", queue_size=1300, note=note)


def test_no_relay_agent_no_relays_section(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("1")
        await settle(pilot)
        assert app.query_one("#relays").size.height == 0

    drive(app, script)


def test_a_relay_agent_shows_what_it_holds_and_whether_it_honoured_the_stop(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        generation = accounts.state(app.store).generation
        _beat(app.store, generation - 1, note="cannot act at the relay: postsuper -h: fatal: use of this command is reserved for the superuser")
        app.poll()
        await settle(pilot)
        table = app.query_one(RelaysTable)
        assert table.get_cell("relay-mx1", "ack").plain == "not yet"  # an older stop's acknowledgement
        assert table.get_cell("relay-mx1", "held").plain == "-"
        assert "reserved for the superuser" in str(app.query_one("#relay-problems").render())
        assert "0/1 relays holding" in drain_line(app.view()).plain and "quiescent" not in drain_line(app.view()).plain
        _beat(app.store, generation)
        app.poll()
        await settle(pilot)
        assert [table.get_cell("relay-mx1", c).plain for c in ("held", "in_delivery", "delivered", "bounced", "ack")] == [
            "1,234", "9", "7", "2", "yes"]
        assert app.query_one("#relay-problems").size.height == 0
        assert "1/1 relays holding" in drain_line(app.view()).plain

    drive(app, script)


def _toasts(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(str(n.message) for n in app._notifications)


def test_the_stop_key_reports_a_relay_that_did_not_acknowledge_without_asking(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        relays.beat(app.store, "relay-mx1", acknowledged={}, counts={}, host="mx1", pid=77, kind="postfix",
                    relay="10.0.0.5:25", started_at=FIXED - 60, state="running", queue_size=1300,
                    note="cannot act at the relay: postsuper: fatal: the relay is down")
        await pilot.press("f2")
        await settle(pilot)
        assert accounts.state(app.store).stopped and app.screen is app.screen_stack[0]  # nothing asked
        deadline = asyncio.get_running_loop().time() + 10
        while "did not acknowledge" not in _toasts(app):
            assert asyncio.get_running_loop().time() < deadline, "no report of the relays after the stop"
            await asyncio.sleep(0.05)
        text = _toasts(app)
        assert "10.0.0.5:25" in text and "within 2 s" in text and "the relay is down" in text

    drive(app, script)


def test_the_stop_key_reports_what_a_relay_held(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        acc = accounts.state(app.store).id
        generation = accounts.state(app.store).generation + 1  # the stop's
        _beat(app.store, generation)  # (as if) acknowledged at once
        await pilot.press("f2")
        await settle(pilot)
        deadline = asyncio.get_running_loop().time() + 10
        while "held 1,234" not in _toasts(app):
            assert asyncio.get_running_loop().time() < deadline, "no report of the relays after the stop"
            await asyncio.sleep(0.05)
        assert "in delivery at the stop 9" in _toasts(app) and acc

    drive(app, script)


def test_at_80x24_the_relays_table_is_reached_by_key(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        _beat(app.store, accounts.state(app.store).generation)
        app.poll()
        await settle(pilot)
        table = app.query_one(RelaysTable)
        footer_top = app.screen.size.height - 1
        assert table.region.height == 0 or table.region.y + 2 >= footer_top  # below the fold (its row unseen)
        await pilot.press("tab")
        await settle(pilot)
        assert app.focused is table
        region = table.region
        assert region.height >= 2 and region.y + 2 <= footer_top  # its header and its row in view

    drive(app, script, size=(80, 24))
