"""LISTEN/NOTIFY wake-ups (store/backends/pg_notify.py) on a real server, restarts included."""

from __future__ import annotations

import psycopg
import pytest

from mailconsole.store import Store
from mailconsole.store.backends import pg_notify
from mailconsole.store.backends.pg_notify import RECONNECTED, Listener, Wakeup

# A listener polled with short waits must see a committed notification within this
# many of them; a count of polls, not a time: the machine's load does not matter.
POLLS = 200
POLL = 0.05


def next_wakeups(listener: Listener, polls: int = POLLS) -> list[Wakeup]:
    for _ in range(polls):
        got = listener.wait(POLL)
        if got:
            return got
    return []


@pytest.fixture
def listener(pg_url: str):
    with Listener(pg_url) as it:
        yield it


@pytest.fixture
def restartable_url(pg_restartable) -> str:
    return pg_restartable.create_database()


def test_committed_notify_wakes_the_listener(migrated_url: str) -> None:
    listener = Listener(migrated_url)
    store = Store(migrated_url)
    try:
        with store.write() as conn:
            pg_notify.notify(conn, pg_notify.STOP, account=1)
            pg_notify.notify(conn, pg_notify.WORK, mailing=7)
    finally:
        store.close()
    got = next_wakeups(listener)
    got += listener.wait(0.0) if len(got) < 2 else []
    listener.close()
    assert got == [Wakeup("stop", {"account": 1}), Wakeup("work", {"mailing": 7})]


def test_nothing_before_commit_and_nothing_after_rollback(listener: Listener, pg_server, pg_url: str) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    with pg_server.connect(dbname, autocommit=False) as conn:
        pg_notify.notify(conn, pg_notify.PAUSE, mailing=1)
        assert listener.wait(0.2) == []  # the transaction is still open
        conn.rollback()
    assert listener.wait(0.2) == []
    with pg_server.connect(dbname, autocommit=False) as conn:
        pg_notify.notify(conn, pg_notify.DELETE, mailing=2)
        conn.commit()
    assert next_wakeups(listener) == [Wakeup("delete", {"mailing": 2})]


def test_a_listener_wakes_only_for_its_database(listener: Listener, pg_server) -> None:
    other = pg_server.create_database()
    with pg_server.connect(other.rsplit("/", 1)[1]) as conn:
        pg_notify.notify(conn, pg_notify.STOP, account=1)
    assert listener.wait(0.3) == []


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_server_restart_is_survived(pg_restartable, restartable_url: str, mode: str) -> None:
    listener = Listener(restartable_url)
    pg_restartable.restart(mode=mode)
    # Notifications sent while it was away are lost: it says so, so its caller reads the tables.
    assert next_wakeups(listener) == [Wakeup(RECONNECTED)]
    assert listener.connected and listener.reconnects == 1
    with pg_restartable.connect(restartable_url.rsplit("/", 1)[1]) as conn:
        pg_notify.notify(conn, pg_notify.RESUME, account=1)
    assert next_wakeups(listener) == [Wakeup("resume", {"account": 1})]
    listener.close()


def test_while_the_server_is_down_waits_time_out_quietly(pg_restartable, restartable_url: str) -> None:
    listener = Listener(restartable_url)
    pg_restartable.stop_server()
    try:
        for _ in range(3):
            assert listener.wait(0.2) == []
        assert not listener.connected
    finally:
        pg_restartable.start()
    assert next_wakeups(listener) == [Wakeup(RECONNECTED)]
    with pg_restartable.connect(restartable_url.rsplit("/", 1)[1]) as conn:
        pg_notify.notify(conn, pg_notify.WORK)
    assert next_wakeups(listener) == [Wakeup("work")]
    listener.close()


def test_a_listener_started_before_its_server_waits_for_it(pg_restartable, restartable_url: str) -> None:
    pg_restartable.stop_server()
    try:
        listener = Listener(restartable_url, connect_timeout=1)
        assert listener.wait(0.2) == [] and not listener.connected
        assert listener.last_error
    finally:
        pg_restartable.start()
    with listener:
        assert next_wakeups(listener) == [Wakeup(RECONNECTED)]


def test_payloads_are_small_and_named() -> None:
    assert pg_notify.payload("stop", account=3) == '{"account":3,"what":"stop"}'
    with pytest.raises(ValueError, match="unknown wake-up"):
        pg_notify.payload("explode")
    with pytest.raises(ValueError, match="at most 1000"):
        pg_notify.payload("work", ids=list(range(1000)))
    # Anyone connected may NOTIFY: foreign text is only a hint to read the tables.
    assert pg_notify.parse("hello") == Wakeup("unknown")
    assert pg_notify.parse('{"what": "stop", "account": 2}') == Wakeup("stop", {"account": 2})


def test_conninfo_keeps_libpq_options_and_adds_no_password() -> None:
    info = pg_notify.conninfo("postgresql+psycopg://mc@db.example:5433/store?sslmode=verify-full&application_name=eng")
    assert "sslmode=verify-full" in info and "application_name=eng" in info and "port=5433" in info
    assert "password" not in info
    assert "keepalives=1" in info


def test_conninfo_names_every_host_of_a_failover_url() -> None:
    info = pg_notify.conninfo(
        "postgresql+psycopg://mc@/store?host=pg1.example:5432&host=pg2.example:5433&target_session_attrs=read-write"
    )
    parsed = psycopg.conninfo.conninfo_to_dict(info)
    assert (parsed["host"], parsed["port"]) == ("pg1.example,pg2.example", "5432,5433")
    assert parsed["target_session_attrs"] == "read-write" and parsed["dbname"] == "store"


def test_a_failover_url_listens_on_the_host_that_answers(pg_server, pg_url: str) -> None:
    # The first host is down (nothing listens on its port): libpq goes on to the next.
    url = pg_url.replace(f"@{pg_server.host}:{pg_server.port}/", "@/") + (
        f"?host=127.0.0.1:1&host={pg_server.host}:{pg_server.port}")
    with Listener(url) as listener:
        assert listener.connected
        with pg_server.connect(pg_url.rsplit("/", 1)[1]) as conn:
            pg_notify.notify(conn, pg_notify.STOP, account=1)
        assert next_wakeups(listener) == [Wakeup("stop", {"account": 1})]
