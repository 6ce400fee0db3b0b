"""An automatic pause shows on every tab and dialog until acknowledged (k); the policy is edited in Settings (P)."""

from __future__ import annotations

import re

from mailconsole.store import audit, auto_pause, policy
from mailconsole.store.mailings import get_mailing, list_mailings

from .pilot import drive, press, screen_text, settle

ACK_IN_FOOTER = re.compile(r"\bk\s+Ack\b")
FIGURES = {"outcomes": 200, "ok": 158, "permanent": 42, "bounced": 0, "deferred": 0, "rate": 21.0, "threshold": 10.0,
           "top_replies": [{"reply": "550 5.1.1 <address>: Recipient address rejected: User unknown", "count": 40}]}


def _sale(store) -> int:  # type: ignore[no-untyped-def]
    return next(m.id for m in list_mailings(store) if m.name == "Spring sale")


def trip(store) -> auto_pause.Trip:  # type: ignore[no-untyped-def]
    """What an engine does past the threshold (the store call it makes)."""
    done = auto_pause.pause_mailing(store, _sale(store), "permanent", FIGURES, "mail-1-4242-a1b2c3")
    assert done is not None
    return done


def test_the_banner_shows_on_every_tab_and_dialog_until_acknowledged(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        text = screen_text(pilot.app)
        assert "AUTOMATIC PAUSE" not in text and not ACK_IN_FOOTER.search(text)
        await press(pilot, "k")  # nothing to acknowledge: the key does nothing
        assert not [e for e in audit.entries(app.store) if e.action == "acknowledge"]
        trip(app.store)
        app.poll()
        await settle(pilot)
        for tab in ("1", "2", "3", "4"):
            await press(pilot, tab)
            text = screen_text(pilot.app)
            assert "⚠ AUTOMATIC PAUSE" in text and "paused by the engine: permanent 21%" in text, tab
            assert "k: acknowledge" in text
        await press(pilot, "2", "question_mark")  # on top of a dialog too
        text = screen_text(pilot.app)
        assert "AUTOMATIC PAUSE" in text and "Acknowledge automatic pause" in text
        await press(pilot, "escape")
        assert ACK_IN_FOOTER.search(screen_text(pilot.app))  # in the footer while there is something to acknowledge
        await press(pilot, "k")
        app.poll()
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "AUTOMATIC PAUSE" not in text and not ACK_IN_FOOTER.search(text)
        assert auto_pause.open_trips(app.store) == []
        assert get_mailing(app.store, _sale(app.store)).status == "paused"  # acknowledged, still paused
        (ack,) = [e for e in audit.entries(app.store) if e.action == "acknowledge"]
        assert ack.actor == "alice" and ack.details["automatic"][0]["kind"] == auto_pause.PAUSE

    drive(app, script, size=(120, 36))


def test_a_read_only_console_shows_the_banner_but_cannot_acknowledge(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(read_only=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        trip(app.store)
        app.poll()
        await settle(pilot)
        await press(pilot, "k")
        assert "AUTOMATIC PAUSE" in screen_text(pilot.app)
        assert len(auto_pause.open_trips(app.store)) == 1

    drive(app, script, size=(120, 36))


def test_the_policy_is_shown_in_settings_and_edited_with_a_confirmation(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        text = screen_text(pilot.app)
        assert "Automatic pause on: last 200 outcomes of a mailing (judged from 100): 5xx > 10%" in text
        await press(pilot, "P")
        await pilot.press(*"window=5")
        await press(pilot, "enter")
        text = screen_text(pilot.app)
        assert "window: 5 is outside 10..100,000" in text and pilot.app.screen.id == "policy-dialog"
        inp = pilot.app.screen.query_one("#policy-input")
        inp.value = ""
        await pilot.press(*"max_permanent=5% suppress_bounces=on")
        await press(pilot, "enter")
        assert pilot.app.screen.id == "policy-confirm"
        text = screen_text(pilot.app)
        assert "max_permanent: 10% → 5%" in text and "suppress_bounces: off → on" in text
        assert pilot.app.focused is not None and pilot.app.focused.id == "no"  # Cancel first
        assert policy.get(app.store) == policy.Policy()  # nothing saved before the yes
        await press(pilot, "y")
        app.poll()
        await settle(pilot)
        p = policy.get(app.store)
        assert p.max_permanent == 5.0 and p.suppress_bounces
        assert "5xx > 5%" in screen_text(pilot.app)
        (entry,) = [e for e in audit.entries(app.store) if e.action == "policy"]
        assert entry.actor == "alice" and entry.details["changed"]["max_permanent"] == [10.0, 5.0]
        await press(pilot, "P", "escape")  # and cancelling changes nothing
        assert len([e for e in audit.entries(app.store) if e.action == "policy"]) == 1

    drive(app, script, size=(120, 36))
