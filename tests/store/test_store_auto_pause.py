"""Automatic pauses and stops in the store: once however many ask, kept until acknowledged, audited."""

from __future__ import annotations

from storehelp import ALICE

from mailconsole.store import audit, auto_pause
from mailconsole.store.accounts import resume, state
from mailconsole.store.mailings import get_mailing, pause, unpause

FIGURES = {"outcomes": 150, "permanent": 30, "rate": 20.0, "threshold": 10.0,
           "top_replies": [{"reply": "550 5.1.1 <address>: no such user", "count": 30}]}


def _by_engine(store, action: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in audit.entries(store, limit=100) if e.actor == "engine" and e.action == action]


def test_a_mailing_is_paused_once_however_many_engines_ask(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(5)
    first = auto_pause.pause_mailing(store, mid, "permanent", FIGURES, "engine-a")
    second = auto_pause.pause_mailing(store, mid, "permanent", FIGURES, "engine-b")
    assert first is not None and first.by == "engine-a" and second is None
    assert get_mailing(store, mid).status == "paused"
    (entry,) = _by_engine(store, "pause")
    assert entry.details["window"] == FIGURES and entry.details["rule"] == "permanent" and entry.details["previous"] == "sending"
    assert auto_pause.open_trips(store) == [first]


def test_a_mailing_an_operator_paused_first_is_not_paused_again(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(5)
    pause(store, ALICE, mid)
    assert auto_pause.pause_mailing(store, mid, "permanent", FIGURES, "engine-a") is None
    assert not _by_engine(store, "pause") and auto_pause.open_trips(store) == []
    unpause(store, ALICE, mid)  # and after the operator's unpause it can be paused by the policy again
    assert auto_pause.pause_mailing(store, mid, "deferred", FIGURES, "engine-a") is not None


def test_the_account_is_stopped_once_and_the_acknowledgement_is_audited(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    make_mailing(5)
    acc = state(store).id
    trip = auto_pause.stop_account(store, acc, "bounced", FIGURES, "relay-x")
    assert trip is not None and auto_pause.stop_account(store, acc, "bounced", FIGURES, "engine-b") is None
    s = state(store)
    assert s.stopped and s.stopped_by == "engine" and "automatic" in (s.reason or "")
    assert len(_by_engine(store, "stop")) == 1  # not even an "already stopped" entry for the second
    assert [t.kind for t in auto_pause.open_trips(store)] == [auto_pause.STOP]
    assert auto_pause.acknowledge(store, ALICE, "default") == 1
    assert auto_pause.open_trips(store) == [] and auto_pause.acknowledge(store, ALICE, "default") == 0
    (ack,) = [e for e in audit.entries(store) if e.action == "acknowledge"]
    assert ack.actor == ALICE.user and ack.details["automatic"][0]["kind"] == auto_pause.STOP
    assert state(store).stopped  # acknowledging is not resuming
    resume(store, ALICE)
    assert not state(store).stopped
