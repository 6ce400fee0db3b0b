"""`mailconsole accounts`: every account, its state, its own rate and its queue."""

from __future__ import annotations

import json

from mailconsole.cli import accounts_cmd
from mailconsole.store import Store, queue


def test_every_account_in_json_with_its_own_rate(cli, mailing, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert cli("init").code == 0 and cli("init", "--account", "acme").code == 0
    mailing(3)
    mailing(6, "--account", "acme")
    assert cli("stop", "--reason", "wrong list").code == 0  # default: only acme can send

    def send_some() -> None:
        store = Store(db)
        claimed = queue.claim(store, "e1", 4, 60)
        queue.record(store, "e1", [queue.Outcome(c.id, c.mailing_id, "sent") for c in claimed])
        store.close()

    class Clock:
        """The command's clock: 4 are sent during its interval, which lasts exactly as asked."""

        now = 1000.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            send_some()
            self.now += seconds

    monkeypatch.setattr(accounts_cmd, "time", Clock())
    r = cli("accounts", "--json", "--interval", "2")
    assert r.code == 0, r.err
    rows = {row["account"]: row for row in json.loads(r.out)}
    assert list(rows) == ["acme", "default"]
    assert rows["default"]["stopped"] and rows["default"]["reason"] == "wrong list" and rows["default"]["rate"] == 0
    acme = rows["acme"]
    assert not acme["stopped"] and acme["since"] is None
    assert (acme["queued"], acme["in_flight"], acme["sent"], acme["mailings"]) == (2, 0, 4, 1)
    assert acme["rate"] == 2.0, acme  # 4 sent over the 2 s measured, not 4 in a window


def test_the_table_says_stopped_in_words(cli, mailing) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    cli("init", "--account", "[red]odd")
    cli("stop", "--account", "[red]odd")
    r = cli("accounts", "--interval", "0")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert any("[red]odd" in line and "STOPPED" in line for line in lines), r.out  # a name is never markup
    assert any("default" in line and "RUNNING" in line for line in lines), r.out


def test_a_bad_interval_is_a_usage_error(cli, cli_process) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    for bad in ("-1", "soon"):
        r = cli_process("accounts", "--interval", bad)
        assert r.code == 2 and "usage error" in r.err and r.err.count("\n") == 1, r.err
