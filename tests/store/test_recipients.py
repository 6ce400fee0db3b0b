"""Who got which mail: the recipients export by state and revision, streamed, and its CSV."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from storehelp import ALICE, SENDER

from store_backend import sqlite_only
from mailconsole import message_ids
from mailconsole.store import InvalidInput, NotFound, StoreError, accounts, queue, recipients, revisions
from mailconsole.store.identity import read_store_id
from mailconsole.store.importer import create_mailing
from mailconsole.times import format_utc

DAY = 86400.0


def rows_of(*people: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"email": e, "name": n, "city": c} for e, n, c in people]


PEOPLE = [(f"user{i}@example.net", f"User {i}", f"City {i}") for i in range(10)]


@pytest.fixture
def mailing(store, csv_file):
    """A mailing of 10 (fields name, city, in that order), not sending yet."""
    path = csv_file(rows_of(*PEOPLE))
    return create_mailing(store, ALICE, name="Sale", sender=SENDER, subject="30% off, {{ name }}",
                          text_body="Hi {{ name }} in {{ city }}\n", html_body=None, recipients=path).mailing_id


def send(store, mid: int, n: int, kind: str = "sent", error: str | None = None) -> list[int]:
    """Claim n messages and record them as `kind` with the newest revision; returns their ids."""
    claimed = queue.claim(store, "test-engine", n, 30)
    assert len(claimed) == n
    rid = revisions.newest_revision(store, mid).id
    queue.record(store, "test-engine", [
        queue.Outcome(c.id, c.mailing_id, kind, revision_id=rid if kind == "sent" else None, error=error,
                      fail_kind="smtp" if kind == "failed" else None)
        for c in claimed
    ])
    return sorted(c.id for c in claimed)  # a claim promises which rows, not their order


def expected_id(store, mid: int, row_id: int, domain: str = "shop.example") -> str:
    with store.read() as conn:
        store_id = read_store_id(conn)
    return message_ids.message_id(row_id, mid, store_id, domain)


@pytest.fixture
def two_revisions(store, clock, mailing):
    """4 sent with revision 1, then revision 2 saved, 3 sent with it, 3 still queued."""
    first = send(store, mailing, 4)
    clock.advance(60)
    revisions.save_revision(store, ALICE, mailing, subject="20% off, {{ name }}")
    second = send(store, mailing, 3)
    return mailing, first, second


def test_the_export_of_a_revision_is_exactly_who_was_sent_it(store, clock, two_revisions):
    mid, first, second = two_revisions
    got = list(recipients.iter_recipients(store, mid, revision=1))
    assert [r.id for r in got] == first
    assert [r.email for r in got] == [p[0] for p in PEOPLE[:4]]
    assert {r.revision for r in got} == {1} and {r.state for r in got} == {"sent"}
    assert [r.message_id for r in got] == [expected_id(store, mid, i) for i in first]
    assert got[0].fields == {"name": "User 0", "city": "City 0"} and got[0].sent_at == clock.now - 60
    again = list(recipients.iter_recipients(store, mid, revision=2))
    assert [r.id for r in again] == second and {r.revision for r in again} == {2}
    # Without a revision: every sent message, by revision, then id.
    assert [r.id for r in recipients.iter_recipients(store, mid)] == first + second


def test_queued_and_suspended_are_listed_with_the_newest_revision_only(store, clock, two_revisions):
    mid, first, second = two_revisions
    queued = list(recipients.iter_recipients(store, mid, state="queued"))
    assert [r.email for r in queued] == [p[0] for p in PEOPLE[7:]]
    assert {(r.revision, r.sent_at) for r in queued} == {(None, None)}
    # They go out with the newest revision: asking for it lists them, an older one is refused.
    assert [r.id for r in recipients.iter_recipients(store, mid, state="queued", revision=2)] == [r.id for r in queued]
    with pytest.raises(InvalidInput, match=r"queued messages are not sent yet: they go out with the newest revision \(2\)"):
        recipients.iter_recipients(store, mid, state="queued", revision=1)
    # The 7-day rule suspends them on resume after a long stop.
    accounts.stop(store, ALICE)
    clock.advance(8 * DAY)
    accounts.resume(store, ALICE)
    assert [r.id for r in recipients.iter_recipients(store, mid, state="suspended")] == [r.id for r in queued]
    assert list(recipients.iter_recipients(store, mid, state="queued")) == []


def test_failed_messages_come_with_their_error_and_refuse_a_revision(store, tmp_path, mailing):
    failed = send(store, mailing, 2, "failed", error="550 5.1.1 no such user")
    assert [(r.id, r.error) for r in recipients.iter_recipients(store, mailing, state="failed")] == [
        (i, "550 5.1.1 no such user") for i in failed]
    with pytest.raises(InvalidInput, match="failed messages were not sent, so they record no revision"):
        recipients.iter_recipients(store, mailing, state="failed", revision=1)
    out = tmp_path / "failed.csv"
    assert recipients.write_csv(store, mailing, out, state="failed") == 2
    [header, row, _] = list(csv.reader(out.open(newline="")))
    assert header == ["email", "name", "city", "sent_at", "revision", "message_id", "state", "error"]
    assert row[-2:] == ["failed", "550 5.1.1 no such user"]


def test_the_csv_has_the_declared_columns_iso_times_and_the_engines_message_ids(store, clock, tmp_path, two_revisions):
    mid, first, _ = two_revisions
    out = tmp_path / "rev1.csv"
    assert recipients.write_csv(store, mid, out, revision=1) == 4
    table = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert list(table[0]) == ["email", "name", "city", "sent_at", "revision", "message_id", "state"]
    assert table[0] == {
        "email": "user0@example.net", "name": "User 0", "city": "City 0",
        "sent_at": format_utc(clock.now - 60, "%Y-%m-%dT%H:%M:%SZ"), "revision": "1",
        "message_id": expected_id(store, mid, first[0]), "state": "sent",
    }
    assert table[0]["sent_at"] == "2023-11-14T22:13:20Z"  # T0 as ISO 8601 UTC
    assert [r["email"] for r in table] == [p[0] for p in PEOPLE[:4]]
    assert out.stat().st_mode & 0o777 == 0o600  # it holds addresses, as the store does


def test_a_message_domain_replaces_the_senders_as_in_the_engine(store, two_revisions):
    mid, first, _ = two_revisions
    [r, *_] = recipients.iter_recipients(store, mid, revision=1, message_domain="mx.example.org")
    assert r.message_id == expected_id(store, mid, first[0], "mx.example.org")
    assert r.message_id.endswith("@mx.example.org>")


def test_values_a_spreadsheet_would_run_are_made_inert_and_line_breaks_quoted(store, csv_file, tmp_path):
    hostile = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "two\nlines", "a,b \"q\""]
    people = [(f"p{i}@example.net", value, "ok") for i, value in enumerate(hostile)]
    mid = create_mailing(store, ALICE, name="Hostile", sender=SENDER, subject="Hi", text_body="Hi\n",
                         html_body=None, recipients=csv_file(rows_of(*people))).mailing_id
    out = tmp_path / "hostile.csv"
    recipients.write_csv(store, mid, out, state="queued")
    names = [r["name"] for r in csv.DictReader(out.open(newline="", encoding="utf-8"))]
    assert names == ["'" + v for v in hostile[:6]] + hostile[6:]
    assert b'"two\nlines"' in out.read_bytes()


def test_unknown_mailing_revision_state_or_directory_is_refused_and_nothing_written(store, tmp_path, mailing):
    out = tmp_path / "out.csv"
    out.write_text("an earlier export\n")
    with pytest.raises(NotFound, match="mailing 99 does not exist"):
        recipients.write_csv(store, 99, out)
    with pytest.raises(NotFound, match=r"mailing \d+ has no revision 3 \(it has only revision 1;"):
        recipients.write_csv(store, mailing, out, revision=3)
    with pytest.raises(InvalidInput, match="unknown state 'claimed'; give one of sent, queued, failed, suspended"):
        recipients.write_csv(store, mailing, out, state="claimed")
    with pytest.raises(NotFound):  # another account's mailing is not there for this one
        accounts.ensure_account(store, "other")
        recipients.write_csv(store, mailing, out, account="other")
    with pytest.raises(InvalidInput, match="directory .*missing does not exist"):
        recipients.write_csv(store, mailing, tmp_path / "missing" / "out.csv")
    with pytest.raises(InvalidInput, match="is a directory"):
        recipients.write_csv(store, mailing, tmp_path)
    assert out.read_text() == "an earlier export\n"
    written = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("store.db"))  # not the store's files
    assert written == ["out.csv", "recipients-0.csv"]


def test_an_export_interrupted_midway_leaves_the_earlier_file_and_no_part(store, tmp_path, mailing, monkeypatch):
    send(store, mailing, 10)
    out = tmp_path / "out.csv"
    out.write_text("an earlier export\n")
    real_rows = recipients.rows
    seen_during: list[str] = []

    def interrupted(store, sel):  # the operator's Ctrl-C after three rows
        for n, r in enumerate(real_rows(store, sel)):
            if n == 3:
                seen_during.append(out.read_text())
                raise KeyboardInterrupt
            yield r

    monkeypatch.setattr(recipients, "rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        recipients.write_csv(store, mailing, out)
    assert seen_during == ["an earlier export\n"]  # the final name never held a half export
    assert out.read_text() == "an earlier export\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    monkeypatch.setattr(recipients, "rows", real_rows)
    assert recipients.write_csv(store, mailing, out) == 10
    assert len(out.read_text().splitlines()) == 11


def test_rows_are_read_in_short_transactions_not_one_snapshot(store, db_path, mailing, monkeypatch):
    """Between chunks no read transaction is open: a checkpoint can empty the whole WAL."""
    monkeypatch.setattr(recipients, "CHUNK", 3)
    ids = send(store, mailing, 10)
    it = recipients.iter_recipients(store, mailing)
    got = [next(it).id]
    other = sqlite3.connect(db_path)
    try:
        queue.record(store, "x", [])  # nothing: the WAL still holds the sends above
        busy, _log, _done = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "a read transaction of the export held a snapshot between rows"
        got += [r.id for r in it]
    finally:
        other.close()
    assert got == ids  # 4 chunks of 3, 3, 3, 1: each row once, in order


@sqlite_only("reads SQLite's query plan (EXPLAIN QUERY PLAN)")
def test_each_chunk_is_a_seek_into_the_recipients_index(store, two_revisions):
    mid, _first, _second = two_revisions
    for state, revision in (("sent", 1), ("sent", None), ("queued", None)):
        sel = recipients.select_recipients(store, mid, state=state, revision=revision)
        for rid in sel.groups:
            query = recipients.chunk_query(sel, rid, 12345)
            sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
            with store.read() as conn:
                plan = " / ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert plan == ("SEARCH messages USING INDEX ix_messages_recipients "
                            "(mailing_id=? AND state=? AND revision_id=? AND id>?)"), plan


def test_a_store_failure_while_writing_is_one_store_error(store, tmp_path, mailing):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if (ro / "probe").exists() or _writable(ro):
            pytest.skip("running as a user that may write anywhere")
        with pytest.raises(StoreError, match="cannot write the CSV in .*ro: Permission denied"):
            recipients.write_csv(store, mailing, ro / "out.csv", state="queued")
    finally:
        ro.chmod(0o700)


def _writable(directory: Path) -> bool:
    try:
        (directory / "probe").write_text("")
    except PermissionError:
        return False
    (directory / "probe").unlink()
    return True
