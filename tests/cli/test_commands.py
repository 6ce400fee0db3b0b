"""Every CLI command end to end on a real SQLite file."""

from __future__ import annotations

import json

from mailconsole.store import Store
from mailconsole.store import queue


def status(cli) -> dict:
    r = cli("status", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_init_then_status(cli):
    assert cli("init").code == 0
    s = status(cli)
    assert s["account"] == "default" and s["stopped"] is False and s["generation"] == 0
    assert s["queue"] == {"queued": 0, "in_flight": 0, "sent": 0, "failed": 0, "suspended": 0, "suppressed": 0}
    assert s["engines"] == [] and s["rate"] == 0


def test_create_lists_with_counts(cli, mailing):
    cli("init")
    mid = mailing(5)
    rows = json.loads(cli("mailings", "--json").out)
    assert [(m["id"], m["status"], m["recipients"], m["queued"]) for m in rows] == [(mid, "sending", 5, 5)]
    for key in ("id", "name", "status", "scheduled_at", "recipients", "queued", "in_flight", "sent", "failed", "suspended"):
        assert key in rows[0]


def test_planned_mailing_shown_only_with_planned(cli, mailing):
    cli("init")
    mid = mailing(3, "--at", "2099-01-01T09:00:00+00:00")
    assert json.loads(cli("mailings", "--json").out) == []
    planned = json.loads(cli("mailings", "--planned", "--json").out)
    assert [(m["id"], m["status"]) for m in planned] == [(mid, "planned")]


def test_stop_resume_cycle(cli, mailing, db):
    cli("init")
    mailing(3)
    r = cli("stop", "--reason", "wrong price")
    assert r.code == 0 and "STOPPED" in r.out
    s = status(cli)
    assert s["stopped"] and s["reason"] == "wrong price" and s["generation"] == 1 and s["by"]
    assert queue.claim(Store(db), "probe", 10, 30) == []  # nothing can be claimed
    assert cli("stop").code == 0 and status(cli)["generation"] == 1  # idempotent
    r = cli("resume", "--preview")
    assert r.code == 0 and "3 will be sent now, 0 suspended" in r.out and status(cli)["stopped"]
    r = cli("resume", "--yes")
    assert r.code == 0 and "RESUMED" in r.out and not status(cli)["stopped"]
    assert cli("resume", "--yes").code == 0  # resuming twice is harmless
    assert len(queue.claim(Store(db), "probe", 10, 30)) == 3


def test_delete_drops_unsent_and_leaves_lists(cli, mailing):
    cli("init")
    mid = mailing(4)
    r = cli("delete", str(mid), "--yes")
    assert r.code == 0 and "4 dropped" in r.out
    assert json.loads(cli("mailings", "--planned", "--json").out) == []
    assert status(cli)["queue"]["queued"] == 0
    again = cli("delete", str(mid), "--yes")
    assert again.code == 1 and "was deleted" in again.err
    entry = json.loads(cli("audit", "--json").out)[0]
    assert entry["action"] == "delete" and entry["details"]["dropped"] == 4 and entry["details"]["sent"] == 0


def test_pause_unpause(cli, mailing, db):
    cli("init")
    mid = mailing(2)
    assert "paused" in cli("pause", str(mid)).out
    assert queue.claim(Store(db), "probe", 10, 30) == []
    assert "sending" in cli("unpause", str(mid)).out
    assert cli("unpause", str(mid)).code == 1


def test_template_show_and_set(cli, mailing, files):
    cli("init")
    mid = mailing(2)
    assert "revision 1: 0" in cli("template", "show", str(mid)).out
    r = cli("template", "set", str(mid), "--subject", "Corrected {{ first_name }}")
    assert r.code == 0 and "revision 2" in r.out
    shown = cli("template", "show", str(mid)).out
    assert "Corrected {{ first_name }}" in shown and "revision 2: 0" in shown
    bad = cli("template", "set", str(mid), "--subject", "Hi {{ frist_name }}")
    assert bad.code == 1 and "frist_name" in bad.err and "line 1" in bad.err
    assert len(bad.err.strip().splitlines()) == 1


def test_requeue_after_seven_day_rule(cli, mailing, db):
    cli("init")
    mid = mailing(3)
    cli("stop")
    r = cli("resume", "--yes", "--max-age-days", "0")  # everything due before now counts as stale
    assert "3 suspended" in r.out
    assert status(cli)["queue"]["suspended"] == 3
    r = cli("requeue", str(mid))
    assert r.code == 0 and "requeued 3" in r.out
    assert status(cli)["queue"]["queued"] == 3
    assert cli("requeue", str(mid)).code == 1


def test_create_like_takes_template_from_existing(cli, mailing, files):
    cli("init")
    mid = mailing(2)
    cli("template", "set", str(mid), "--subject", "Fixed {{ first_name }}")
    csv = files("other.csv", "email,first_name\nnew@example.com,New\n")
    r = cli("create", "--like", str(mid), "--recipients", str(csv))
    assert r.code == 0, r.err
    new_id = int(r.out)
    assert "Fixed {{ first_name }}" in cli("template", "show", str(new_id)).out


def test_reschedule_planned(cli, mailing):
    cli("init")
    mid = mailing(2, "--at", "2099-01-01T09:00:00Z")
    r = cli("reschedule", str(mid), "--at", "2098-05-01T10:00:00+00:00")
    assert r.code == 0 and "2098-05-01" in r.out


def test_audit_records_every_action(cli, mailing):
    cli("init")
    mid = mailing(2)
    cli("pause", str(mid))
    cli("unpause", str(mid))
    cli("template", "set", str(mid), "--subject", "New")
    cli("stop", "--reason", "x")
    cli("resume", "--yes")
    cli("delete", str(mid), "--yes")
    actions = [e["action"] for e in json.loads(cli("audit", "--json", "--limit", "20").out)]
    assert actions == ["delete", "resume", "stop", "template", "unpause", "pause", "create"]
    assert "delete" in cli("audit").out


def test_global_options_after_command(cli, db, capsys):
    from mailconsole.cli import main

    assert main(["init", "--db", db, "--account", "default"]) == 0
    capsys.readouterr()
    assert main(["status", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["account"] == "default"


def test_stop_json_says_every_engine_confirmed_and_bound_is_checked(cli, cli_process, db):
    assert cli("init").code == 0
    r = cli("stop", "--json", "--bound", "0.5")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["stopped"] and out["confirmed"] and out["unconfirmed"] == [] and out["generation"] == 1
    bad = cli_process("stop", "--bound", "100")
    assert bad.code == 2 and "from 0 to 60" in bad.err
