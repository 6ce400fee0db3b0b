"""The overview an operator reads first: stop state, queue totals, engines and their acknowledgement."""

from __future__ import annotations

from storehelp import ALICE, sent

from mailconsole.store import accounts, engines, queue, status


def beat(store, engine_id, **values):
    defaults = dict(host="mx1", pid=4242, workers=4, transport="smtp://relay", started_at=store.now(),
                    state="running", in_flight=0, sent_rate=0.0, acknowledged={})
    defaults.update(values)
    engines.beat(store, engine_id, **defaults)


def test_queue_totals_follow_the_counters(store, clock, make_mailing):
    make_mailing(5, name="a")
    make_mailing(3, name="b", at=clock.now + 3600)  # planned: counted in the totals too
    queue.record(store, "e1", sent(store, queue.claim(store, "e1", 2, 60)))
    queue.claim(store, "e1", 1, 60)
    assert status.overview(store).queue == {"queued": 5, "in_flight": 1, "sent": 2, "failed": 0, "suspended": 0, "suppressed": 0}


def test_engines_acknowledge_the_stop(store, clock):
    beat(store, "e1", in_flight=3, sent_rate=1200.0)
    beat(store, "e2", sent_rate=800.0)
    acc = accounts.stop(store, ALICE)
    view = status.overview(store)
    assert (view.acknowledged, view.quiescent, view.rate, view.in_flight) == (0, False, 2000.0, 3)

    beat(store, "e1", acknowledged={acc.id: acc.generation}, in_flight=0, sent_rate=0.0)
    beat(store, "e2", acknowledged={acc.id: acc.generation}, sent_rate=0.0)
    view = status.overview(store)
    assert (view.acknowledged, view.quiescent) == (2, True)
    as_dict = view.as_dict()
    assert as_dict["stopped"] and as_dict["by"] == "alice" and as_dict["from"] == "192.0.2.7"
    assert [e["acknowledged_generation"] for e in as_dict["engines"]] == [1, 1]

    # A second stop is a new generation: the old acknowledgements no longer count.
    accounts.resume(store, ALICE)
    accounts.stop(store, ALICE)
    assert status.overview(store).acknowledged == 0


def test_a_silent_engine_is_gone_and_does_not_block_quiescence(store, clock):
    beat(store, "dead", in_flight=7, sent_rate=500.0)
    clock.advance(engines.LIVE_WITHIN + 1)
    accounts.stop(store, ALICE)
    view = status.overview(store)
    assert [e.id for e in view.engines] == ["dead"] and not view.engines[0].alive
    assert (view.in_flight, view.rate, view.quiescent) == (0, 0.0, True)
    clock.advance(600)
    assert status.overview(store).engines == []  # forgotten after a while
