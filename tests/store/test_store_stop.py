"""The emergency stop: idempotent, durable, audited, and enforced by the store for every process."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from sqlalchemy import event, func, select
from storehelp import ALICE, python_child, rest_of_output

from store_backend import sqlite_only
from mailconsole.store import Actor, NotFound, accounts, audit, queue
from mailconsole.store.schema import messages


def stop_entries(store):
    return [e for e in audit.entries(store, limit=100) if e.action == "stop"]


def test_stop_records_who_when_why_and_bumps_generation(store, clock):
    before = accounts.state(store)
    assert not before.stopped and before.generation == 0

    after = accounts.stop(store, ALICE, reason="wrong list")

    assert after.stopped
    assert after.generation == 1
    assert (after.stopped_at, after.stopped_by, after.stopped_from, after.reason) == (clock.now, "alice", "192.0.2.7", "wrong list")
    assert accounts.state(store) == after  # committed, not just returned


def test_second_stop_is_harmless_but_still_audited(store, clock):
    first = accounts.stop(store, ALICE, reason="first")
    clock.advance(5)
    second = accounts.stop(store, Actor("bob"), reason="again")

    # Nothing about the original stop changes: the generation and who stopped it stay.
    assert second == first
    assert accounts.state(store).generation == 1
    entries = stop_entries(store)
    assert len(entries) == 2
    assert entries[0].actor == "bob" and entries[0].details["already_stopped"] is True


def test_generation_increases_at_every_stop(store):
    for expected in (1, 2, 3):
        assert accounts.stop(store, ALICE).generation == expected
        accounts.resume(store, ALICE)
    assert accounts.state(store).generation == 3


def test_unknown_account_is_refused(store):
    with pytest.raises(NotFound, match="no account named 'nope'"):
        accounts.stop(store, ALICE, account="nope")


@sqlite_only("SQLite's PRAGMA synchronous; PostgreSQL's durable commit is synchronous_commit")
def test_stop_commits_with_synchronous_full_and_restores_normal(store):
    """The stop must survive power loss (FULL); everything else keeps the faster NORMAL."""
    seen: list[int] = []

    def spy(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE ACCOUNTS"):
            seen.append(conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0])

    event.listen(store.engine, "before_cursor_execute", spy)
    try:
        accounts.stop(store, ALICE)
    finally:
        event.remove(store.engine, "before_cursor_execute", spy)

    assert seen == [2]  # FULL, on the connection that wrote the stop
    # Every pooled connection is back on NORMAL (1) afterwards.
    with store.engine.connect() as conn:
        assert conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_actor_from_environment_parses_ssh_connection(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.23 52144 10.0.0.5 22")
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    assert Actor.current().ssh_client == "198.51.100.23"

    monkeypatch.setenv("SSH_CONNECTION", "2001:db8::1 52144 2001:db8::2 22")
    assert Actor.current().ssh_client == "2001:db8::1"

    monkeypatch.delenv("SSH_CONNECTION")
    monkeypatch.setenv("SSH_CLIENT", "203.0.113.9 4711 22")
    assert Actor.current().ssh_client == "203.0.113.9"

    # A blank variable (seen with some session managers) means: not over SSH.
    monkeypatch.setenv("SSH_CLIENT", "   ")
    assert Actor.current().ssh_client is None
    assert Actor.current().user


def test_stop_over_ssh_names_the_client(store, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.23 52144 10.0.0.5 22")
    state = accounts.stop(store, Actor.current())
    assert state.stopped_from == "198.51.100.23"
    assert stop_entries(store)[0].ssh_client == "198.51.100.23"


def test_after_stop_nothing_can_be_claimed(store, make_mailing):
    make_mailing(20)
    assert len(queue.claim(store, "e1", 5, 60)) == 5
    accounts.stop(store, ALICE)
    assert queue.claim(store, "e1", 100, 60) == []
    accounts.resume(store, ALICE)
    assert len(queue.claim(store, "e1", 100, 60)) == 15


def test_resume_twice_is_harmless(store, make_mailing, clock):
    make_mailing(5)
    accounts.stop(store, ALICE)
    first = accounts.resume(store, ALICE)
    second = accounts.resume(store, ALICE)
    assert first.stopped and first.to_send == 5
    assert not second.stopped and (second.to_send, second.to_suspend) == (0, 0)
    assert [e.action for e in audit.entries(store, limit=100)].count("resume") == 1
    assert not accounts.state(store).stopped


CLAIMER = textwrap.dedent(
    """
    import json, signal, sys, time
    from mailconsole.store import Store, queue

    store = Store(sys.argv[1])
    deadline = time.time() + float(sys.argv[2])
    ended = []  # SIGTERM: finish the claim under way (and its line), then quit
    signal.signal(signal.SIGTERM, lambda *_: ended.append(True))
    print("ready", flush=True)
    while time.time() < deadline and not ended:
        start = time.time()
        got = queue.claim(store, "other-process", 1, 600)
        end = time.time()
        if got:
            print(json.dumps({"start": start, "end": end, "ids": [c.id for c in got]}), flush=True)
    """
)


def claimed_rows(store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(messages).where(messages.c.state == "claimed")).scalar_one()


def test_stop_wins_against_a_claimer_in_another_process(store, make_mailing, db_path):
    """A real second process claims in a tight loop; once the stop has committed, none of its claims succeeds."""
    make_mailing(5000)
    # Claiming for far longer than the stop may take: a stop starved by the claimer
    # would wait for it to quit (30 s), not return when a short-lived one happened to.
    with python_child(CLAIMER, str(db_path), "30.0") as proc:
        assert proc.stdout.readline().strip() == "ready"
        # Let it claim for real before stopping, so the stop races a busy writer.
        deadline = time.time() + 2.5
        while claimed_rows(store) < 20 and time.time() < deadline:
            time.sleep(0.01)
        assert claimed_rows(store) >= 20, "the other process never claimed anything"

        asked = time.monotonic()
        accounts.stop(store, ALICE)
        stop_committed = time.time()  # the stop's COMMIT happened before this instant
        # The busy claimer must not starve the stop (it waits for the lock, not for the claimer
        # to quit). Milliseconds usually; 5 s is room for a loaded machine.
        assert time.monotonic() - asked < 5.0
        held = claimed_rows(store)
        time.sleep(0.4)  # the other process keeps trying all this time
        assert proc.poll() is None, "the claimer quit before the stop was tested against it"
        assert claimed_rows(store) == held, "a claim succeeded after the stop committed"
        proc.terminate()
        out = rest_of_output(proc, 10)

    claims = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    with store.read() as conn:
        in_db = set(conn.execute(select(messages.c.id).where(messages.c.state == "claimed")).scalars())
    reported = {i for c in claims for i in c["ids"]}
    assert reported == in_db, (sorted(in_db - reported), sorted(reported - in_db), out[-500:])
    late = [c for c in claims if c["start"] > stop_committed]
    assert late == [], f"{len(late)} claim(s) began after the stop committed and still succeeded"
