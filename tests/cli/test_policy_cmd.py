"""`mailconsole policy show|set|acknowledge`: the store's automatic pause policy, end to end."""

from __future__ import annotations

import json

from mailconsole.store import Store, auto_pause


def test_show_has_the_defaults_and_set_changes_them_audited(cli):
    assert cli("init").code == 0
    shown = json.loads(cli("policy", "show", "--json").out)
    assert shown["policy"]["max_permanent"] == 10.0 and shown["policy"]["suppress_bounces"] is False
    assert shown["unacknowledged"] == []
    table = cli("policy", "show").out
    assert "max_permanent" in table and "10%" in table and "suppress_bounces" in table
    r = cli("policy", "set", "max_permanent=5%", "window=400", "max_deferred=off", "suppress_bounces=on")
    assert r.code == 0, r.err
    assert "max_permanent: 10% -> 5%" in r.out and "max_deferred: 30% -> off" in r.out
    p = json.loads(cli("policy", "show", "--json").out)["policy"]
    assert (p["max_permanent"], p["window"], p["max_deferred"], p["suppress_bounces"]) == (5.0, 400, None, True)
    assert "(default 10%)" in cli("policy", "show").out
    again = cli("policy", "set", "window=400")
    assert again.code == 0 and "nothing changed" in again.out
    entries = [e for e in json.loads(cli("audit", "--json").out) if e["action"] == "policy"]
    assert len(entries) == 1
    assert entries[0]["details"]["changed"]["window"] == [200, 400]


def test_bad_values_are_one_line_errors_and_nothing_is_half_applied(cli):
    assert cli("init").code == 0
    before = cli("policy", "show", "--json").out
    for args, says in [
        (("max_permanent=5", "window=ten"), "window: 'ten' is not a whole number"),
        (("max_permanent=150%",), "outside 0..100"),
        (("max_permanent=0",), "use off to turn it off"),
        (("max_bounced=lots",), "not a percentage"),
        (("window=5",), "outside 10..100,000"),
        (("min_outcomes=300",), "min_outcomes (300) exceeds window (200)"),
        (("auto_pause=maybe",), "is not on or off"),
        (("colour=red",), "no policy setting named 'colour'"),
    ]:
        r = cli("policy", "set", *args)
        assert r.code == 1 and says in r.err and r.err.count("\n") == 1, (args, r.err)
    r = cli("policy", "set", "window")
    assert r.code == 2 and "is not KEY=VALUE" in r.err and r.err.count("\n") == 1
    assert cli("policy", "show", "--json").out == before
    assert not [e for e in json.loads(cli("audit", "--json").out) if e["action"] == "policy"]


def test_show_lists_an_automatic_pause_until_it_is_acknowledged(cli, db, files):
    assert cli("init").code == 0
    r = cli("create", "--name", "spring", "--from", "news@shop.example", "--subject", "Hi",
            "--body-file", str(files("t.txt", "Hello\n")), "--recipients", str(files("r.csv", "email\na@example.net\n")))
    assert r.code == 0, r.err
    store = Store(db)
    try:
        trip = auto_pause.pause_mailing(store, 1, "permanent", {"outcomes": 120, "rate": 20.0, "threshold": 10.0,
                                                                 "top_replies": []}, "engine-x")
    finally:
        store.close()
    assert trip is not None
    out = cli("policy", "show").out
    assert "mailing 1 (spring) paused by the engine: permanent 20% > 10% of the last 120 outcomes" in out
    assert json.loads(cli("policy", "show", "--json").out)["unacknowledged"][0]["by"] == "engine-x"
    r = cli("policy", "acknowledge")
    assert r.code == 0 and "acknowledged 1" in r.out
    assert json.loads(cli("policy", "show", "--json").out)["unacknowledged"] == []
    assert "nothing to acknowledge" in cli("policy", "acknowledge").out
    actions = [(e["action"], e["actor"]) for e in json.loads(cli("audit", "--json").out)]
    assert ("pause", "engine") in actions and actions.count(("acknowledge", actions[0][1])) == 1
