"""The suppression list: kept per account, case-insensitive in the domain, honoured at import and at claim."""

from __future__ import annotations

import json

import pytest
from storehelp import ALICE, SENDER, assert_counters_match, recipients, sent

from mailconsole.store import InvalidInput, accounts, mailings, queue, suppressions
from mailconsole.store.audit import entries
from mailconsole.store.importer import create_mailing


def _create(store, csv_file, rows, **options):  # type: ignore[no-untyped-def]
    return create_mailing(store, ALICE, name="News", sender=SENDER, subject="Hi {{ name }}", text_body="x",
                          html_body=None, recipients=csv_file(rows), **options)


def test_add_is_case_insensitive_in_the_domain_only_and_audited(store):
    assert suppressions.add(store, ALICE, "Ann@Example.COM", "unsubscribed")
    assert not suppressions.add(store, ALICE, "Ann@example.com")  # the same address: nothing changes
    assert suppressions.add(store, ALICE, "ann@example.com")  # another local part: another mailbox
    assert [(s.email, s.reason) for s in suppressions.list_suppressions(store)] == [
        ("Ann@example.com", "unsubscribed"), ("ann@example.com", None)]
    assert suppressions.remove(store, ALICE, "Ann@EXAMPLE.com") and not suppressions.remove(store, ALICE, "Ann@example.com")
    actions = [(e.action, json.loads(e.details) if isinstance(e.details, str) else e.details)
               for e in entries(store)]
    assert [a for a, _ in actions].count("suppress") == 2 and [a for a, _ in actions].count("unsuppress") == 1


def test_a_bad_address_or_reason_is_refused_and_nothing_changes(store):
    for address, reason in (("not-an-address", None), ("a@bücher.de", None), ("a@example.com", "two\nlines")):
        with pytest.raises(InvalidInput):
            suppressions.add(store, ALICE, address, reason)
    assert suppressions.list_suppressions(store) == []


def test_suppressions_are_per_account(store, csv_file):
    accounts.ensure_account(store, "other")
    suppressions.add(store, ALICE, "user1@example.net", account="other")
    result = _create(store, csv_file, recipients(3))
    assert (result.recipients, result.suppressed) == (3, 0)


def test_a_suppressed_address_is_skipped_at_import_and_counted(store, csv_file):
    suppressions.add(store, ALICE, "user1@EXAMPLE.net")
    suppressions.add(store, ALICE, "user3@example.net")
    result = _create(store, csv_file, recipients(5), batch_size=2)
    assert (result.recipients, result.suppressed, result.skipped) == (3, 2, 0)
    m = mailings.get_mailing(store, result.mailing_id)
    assert (m.recipients, m.queued, m.expected) == (3, 3, 3)
    with store.read() as conn:
        emails = set(conn.exec_driver_sql("SELECT email FROM messages").scalars())
    assert emails == {"user0@example.net", "user2@example.net", "user4@example.net"}
    [created] = [e for e in entries(store) if e.action == "create"]
    details = json.loads(created.details) if isinstance(created.details, str) else created.details
    assert (details["recipients"], details["suppressed"]) == (3, 2)
    assert_counters_match(store)


def test_a_mailing_whose_every_recipient_is_suppressed_is_sent_with_nothing_to_send(store, csv_file):
    suppressions.add(store, ALICE, "user0@example.net")
    result = _create(store, csv_file, recipients(1))
    assert (result.recipients, result.suppressed, result.status) == (0, 1, "sent")


def test_a_suppression_added_after_import_takes_effect_at_the_next_claim(store, csv_file):
    mid = _create(store, csv_file, recipients(4)).mailing_id
    first = queue.claim(store, "e1", 1, 60)
    queue.record(store, "e1", sent(store, first))
    suppressions.add(store, ALICE, "user2@example.net", "bounced")
    got = queue.claim(store, "e1", 10, 60)
    assert sorted(c.email for c in got) == ["user1@example.net", "user3@example.net"]
    m = mailings.get_mailing(store, mid)
    assert (m.queued, m.in_flight, m.suppressed, m.sent) == (0, 2, 1, 1)
    with store.read() as conn:
        row = conn.exec_driver_sql("SELECT state, attempts, lease_owner FROM messages WHERE email='user2@example.net'").one()
    assert tuple(row) == ("suppressed", 0, None)
    queue.record(store, "e1", sent(store, got))
    assert mailings.get_mailing(store, mid).status == "sent"
    assert_counters_match(store)


def test_a_mailing_left_with_only_suppressed_messages_becomes_sent_at_the_claim(store, csv_file):
    mid = _create(store, csv_file, recipients(2)).mailing_id
    suppressions.add(store, ALICE, "user0@example.net")
    suppressions.add(store, ALICE, "user1@example.net")
    assert queue.claim(store, "e1", 10, 60) == []
    m = mailings.get_mailing(store, mid)
    assert (m.status, m.suppressed, m.queued) == ("sent", 2, 0)


def test_import_adds_every_row_or_none(store, csv_file):
    good = csv_file([{"email": "a@Example.com", "reason": "complaint"}, {"email": "b@example.com", "reason": ""},
                     {"email": "a@example.com", "reason": ""}])
    suppressions.add(store, ALICE, "b@example.com", "bounced")
    result = suppressions.import_csv(store, ALICE, good, reason="list cleanup")
    assert (result.added, result.already) == (1, 1)
    assert {(s.email, s.reason) for s in suppressions.list_suppressions(store)} == {
        ("a@example.com", "complaint"), ("b@example.com", "bounced")}
    bad = csv_file([{"email": "c@example.com"}, {"email": "not-an-address"}])
    with pytest.raises(InvalidInput, match=r"line 3: 'not-an-address'.*nothing imported"):
        suppressions.import_csv(store, ALICE, bad)
    assert len(suppressions.list_suppressions(store)) == 2
