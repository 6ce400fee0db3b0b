"""`mailconsole suppress add|remove|list|import`, and `create` skipping suppressed addresses, end to end."""

from __future__ import annotations

import json


def test_add_list_remove_and_the_audit(cli):
    assert cli("init").code == 0
    r = cli("suppress", "add", "Ann@Example.COM", "--reason", "unsubscribed")
    assert r.code == 0 and "suppressed Ann@Example.COM" in r.out, r.err
    again = cli("suppress", "add", "Ann@example.com")
    assert again.code == 0 and "already suppressed" in again.out
    listed = json.loads(cli("suppress", "list", "--json").out)
    assert [(s["email"], s["reason"]) for s in listed] == [("Ann@example.com", "unsubscribed")]
    assert "1 suppressed address(es)" in cli("suppress", "list").out
    wrong = cli("suppress", "remove", "ann@example.com")  # another mailbox: the local part counts
    assert wrong.code == 1 and "is not suppressed; nothing changed" in wrong.err and wrong.err.count("\n") == 1
    r = cli("suppress", "remove", "Ann@EXAMPLE.com")
    assert r.code == 0 and "no longer suppressed" in r.out
    assert json.loads(cli("suppress", "list", "--json").out) == []
    actions = [e["action"] for e in json.loads(cli("audit", "--json").out)]
    assert actions.count("suppress") == 1 and actions.count("unsuppress") == 1


def test_bad_input_is_one_line_and_changes_nothing(cli, files):
    assert cli("init").code == 0
    r = cli("suppress", "add", "jürgen@example.com")
    assert r.code == 1 and "not ASCII" in r.err and r.err.count("\n") == 1
    csv = files("s.csv", "email\nok@example.com\nbroken\n")
    r = cli("suppress", "import", str(csv))
    assert r.code == 1 and "line 3" in r.err and "nothing imported" in r.err and r.err.count("\n") == 1
    r = cli("suppress", "import", str(files("n.csv", "address\nok@example.com\n")))
    assert r.code == 1 and "no 'email' column" in r.err
    assert json.loads(cli("suppress", "list", "--json").out) == []


def test_import_then_create_skips_the_suppressed_with_a_count(cli, files):
    assert cli("init").code == 0
    r = cli("suppress", "import", str(files("s.csv", "email,reason\nu1@EXAMPLE.com,bounced\nu3@example.com,\n")),
            "--reason", "old list")
    assert r.code == 0 and "suppressed 2 address(es)" in r.out, r.err
    rows = files("r.csv", "email,first_name\n" + "".join(f"u{i}@example.com,N{i}\n" for i in range(5)))
    body = files("body.txt", "Hello {{ first_name }}\n")
    r = cli("create", "--name", "T", "--from", "news@example.com", "--subject", "Hi", "--body-file", str(body),
            "--recipients", str(rows))
    assert r.code == 0, r.err
    assert "skipped 2 suppressed address(es)" in r.err and "3 recipients" in r.err
    [m] = json.loads(cli("mailings", "--json").out)
    assert m["recipients"] == 3
    reasons = {s["email"]: s["reason"] for s in json.loads(cli("suppress", "list", "--json").out)}
    assert reasons == {"u1@example.com": "bounced", "u3@example.com": "old list"}


def test_status_and_mailings_count_the_messages_suppressed_mid_send(cli, files, db, monkeypatch):
    from mailconsole.store import Store
    from mailconsole.store.queue import claim

    assert cli("init").code == 0
    rows = files("r.csv", "email\n" + "".join(f"u{i}@example.com\n" for i in range(4)))
    body = files("body.txt", "Hello\n")
    assert cli("create", "--name", "T", "--from", "news@example.com", "--subject", "Hi", "--body-file", str(body),
               "--recipients", str(rows)).code == 0
    assert cli("suppress", "add", "u2@example.com").code == 0
    store = Store(db)
    try:
        assert len(claim(store, "an-engine", 10, lease_seconds=30)) == 3  # u2 leaves the queue in the claim
    finally:
        store.close()
    assert json.loads(cli("status", "--json").out)["queue"]["suppressed"] == 1
    text = cli("status").out
    assert "1 suppressed" in text
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for every column's header unwrapped
    table = cli("mailings").out
    assert "suppr." in table
    [m] = json.loads(cli("mailings", "--json").out)
    assert m["suppressed"] == 1
