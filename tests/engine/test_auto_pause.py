"""The policy pauses a mailing (or stops an account) by itself: real engines, a real SMTP server that refuses some recipients."""

from __future__ import annotations

import random
import time

import trio

from mailconsole.store import auto_pause, audit, policy
from mailconsole.store.accounts import state
from mailconsole.store.mailings import get_mailing

from .conftest import OPERATOR, RecordingHandler, add_mailing, fast_config, running, wait_done, wait_for


def _rows(n: int) -> list[dict[str, str]]:
    return [{"email": f"user{i}@example.net", "name": f"User {i}", "code": f"C{i}"} for i in range(n)]


def _engine_audit(store, action: str):  # type: ignore[no-untyped-def]
    return [e for e in audit.entries(store, limit=1000) if e.actor == "engine" and e.action == action]


async def test_a_healthy_mailing_with_a_few_random_refusals_keeps_sending_to_the_end(store, tmp_path, smtpd_factory):
    n = 600
    refused = {f"user{i}@example.net" for i in random.Random(13).sample(range(n), 12)}  # 2 %, anywhere
    ctl, handler = smtpd_factory(RecordingHandler(reject_rcpt=refused))
    mid = add_mailing(store, tmp_path, rows=_rows(n))
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=4)) as engine:
        m = await wait_done(store, mid, timeout=60)
    assert (m.status, m.sent, m.failed) == ("sent", n - 12, 12)
    assert len(handler.messages) == n - 12
    assert engine.tripped_total == 0 and not _engine_audit(store, "pause")
    assert auto_pause.open_trips(store) == []


async def test_a_mailing_whose_server_refuses_a_fifth_pauses_within_the_window_and_nothing_goes_out_after(
        store, tmp_path, smtpd_factory):
    n = 1000
    ctl, handler = smtpd_factory(RecordingHandler(reject_rcpt={f"user{i}@example.net" for i in range(0, n, 5)}))
    mid = add_mailing(store, tmp_path, rows=_rows(n))
    tripped: list[tuple[auto_pause.Trip, float]] = []
    told: list[tuple[str, dict]] = []
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=4)) as engine:
        engine.trip_listeners.append(lambda trip: tripped.append((trip, time.time())))
        engine.on_event = lambda event, details: told.append((event, details))  # what serve's hook is given
        await wait_for(lambda: get_mailing(store, mid).status == "paused", timeout=60)
        await wait_for(lambda: bool(tripped))
        accepted_then = len(handler.messages)
        await trio.sleep(1.0)  # the engine keeps running: nothing more of this mailing may go out
        m = get_mailing(store, mid)
    trip, returned_at = tripped[0]
    window = policy.Policy().window
    assert m.status == "paused" and m.sent + m.failed <= window + 40  # the window, plus what was in flight
    assert len(handler.messages) == accepted_then == m.sent  # nothing reached the server after the pause
    assert all(r.at <= returned_at for r in handler.messages)
    assert m.queued + m.in_flight == n - m.sent - m.failed
    # Audited as the engine's, with the window's figures and the server's most common reply.
    (entry,) = _engine_audit(store, "pause")
    assert entry.mailing_id == mid and entry.details["automatic"] and entry.details["rule"] == "permanent"
    figures = entry.details["window"]
    assert figures["outcomes"] >= policy.Policy().min_outcomes and figures["rate"] > 10
    assert figures["permanent"] == round(figures["rate"] * figures["outcomes"] / 100)
    assert "550 5.1.1 no such user here" in figures["top_replies"][0]["reply"]
    assert entry.details["by"] == engine.engine_id
    (shown,) = auto_pause.open_trips(store)
    assert shown.kind == auto_pause.PAUSE and shown.mailing_id == mid and shown == trip
    # Counted for the metrics under the mailing's account, and told to the notification hook.
    assert engine.counters.automatic_pauses == {state(store).id: 1}
    pauses = [d for e, d in told if e == "automatic_pause"]
    assert len(pauses) == 1 and pauses[0]["mailing"] == mid and pauses[0]["rule"] == "permanent"
    assert pauses[0]["account_id"] == state(store).id and "paused" in pauses[0]["why"]


async def test_two_engines_judging_the_same_mailing_pause_it_once(store, tmp_path, smtpd_factory):
    n = 1200
    ctl, handler = smtpd_factory(RecordingHandler(reject_rcpt={f"user{i}@example.net" for i in range(0, n, 3)}))
    mid = add_mailing(store, tmp_path, rows=_rows(n))
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=3)
    async with running(store, cfg, engine_id="engine-a") as a, running(store, cfg, engine_id="engine-b") as b:
        await wait_for(lambda: get_mailing(store, mid).status == "paused", timeout=60)
        await trio.sleep(1.0)  # both have had every chance to judge it
        accepted = len(handler.messages)
        m = get_mailing(store, mid)
    assert len(_engine_audit(store, "pause")) == 1
    assert len(auto_pause.open_trips(store)) == 1
    assert a.tripped_total + b.tripped_total == 1
    assert m.status == "paused" and accepted == m.sent


async def test_an_account_wide_threshold_stops_the_account(store, tmp_path, smtpd_factory):
    # Three mailings, each too small for its own window to judge; together a quarter is refused.
    policy.set_values(store, OPERATOR, {"min_outcomes": "200", "window": "200", "account_window": "100",
                                        "account_min_outcomes": "60", "account_max_permanent": "15"})
    refused = {f"m{k}-user{i}@example.net" for k in range(3) for i in range(0, 150, 4)}
    ctl, handler = smtpd_factory(RecordingHandler(reject_rcpt=refused))
    mids = [add_mailing(store, tmp_path, name=f"part {k}",
                        rows=[{"email": f"m{k}-user{i}@example.net", "name": "x", "code": "y"} for i in range(150)])
            for k in range(3)]
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=3)):
        await wait_for(lambda: state(store).stopped, timeout=60)
        await trio.sleep(0.5)
        accepted = len(handler.messages)
        sent = sum(get_mailing(store, mid).sent for mid in mids)
    acc = state(store)
    assert acc.stopped and acc.stopped_by == "engine" and acc.reason.startswith("automatic: account default stopped")
    (entry,) = _engine_audit(store, "stop")
    assert entry.details["rule"] == "permanent" and 60 <= entry.details["window"]["outcomes"] <= 100
    assert accepted == sent < 450 - len(refused)
    (trip,) = auto_pause.open_trips(store)
    assert trip.kind == auto_pause.STOP and trip.mailing_id is None
    assert not _engine_audit(store, "pause")  # the mailings' own thresholds did not fire


async def test_with_the_automatic_pause_off_a_bad_mailing_is_sent_to_the_end(store, tmp_path, smtpd_factory):
    policy.set_values(store, OPERATOR, {"auto_pause": "off", "auto_stop": "off"})
    n = 400
    ctl, handler = smtpd_factory(RecordingHandler(reject_rcpt={f"user{i}@example.net" for i in range(0, n, 5)}))
    mid = add_mailing(store, tmp_path, rows=_rows(n))
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=4)):
        m = await wait_done(store, mid, timeout=60)
    assert (m.status, m.sent, m.failed) == ("sent", n - n // 5, n // 5)
