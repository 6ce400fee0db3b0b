"""Template correction: validated before saving, a new revision each time, the newest one used."""

from __future__ import annotations

import pytest
from storehelp import ALICE, sent

from mailconsole.store import InvalidInput, NotFound, audit, importer, mailings, queue, revisions
from mailconsole.store.importer import create_mailing


def newest(store, mid):
    return revisions.newest_revision(store, mid)


def test_save_stores_a_new_revision_used_from_now_on(store, clock, make_mailing):
    mid = make_mailing(4)
    first = queue.claim(store, "e1", 2, 60)
    queue.record(store, "e1", sent(store, first))  # sent with revision 1

    clock.advance(60)
    rev = revisions.save_revision(store, ALICE, mid, subject="Hello again {{ name }}")

    assert rev.number == 2 and rev.subject == "Hello again {{ name }}"
    assert rev.text_body == "Dear {{ name }},\nour news.\n"  # parts not given are kept
    assert newest(store, mid) == rev
    assert queue.newest_revisions(store, [mid])[mid][0] == rev.id  # what the engine renders
    queue.record(store, "e1", sent(store, queue.claim(store, "e1", 2, 60)))
    assert mailings.revision_counts(store, mid) == [(1, 2), (2, 2)]
    entry = audit.entries(store, limit=1)[0]
    assert (entry.action, entry.details["revision"], entry.details["previous"]) == ("template", 2, 1)
    assert entry.details["queued_at_save"] == 2


def test_unchanged_save_creates_no_revision(store, make_mailing):
    mid = make_mailing(1)
    current = newest(store, mid)
    assert revisions.save_revision(store, ALICE, mid, subject=current.subject, text_body=current.text_body) == current
    assert len(revisions.all_revisions(store, mid)) == 1
    assert [e.action for e in audit.entries(store, limit=10)] == ["create"]


def test_html_body_can_be_added_and_removed(store, make_mailing):
    mid = make_mailing(1)
    assert revisions.save_revision(store, ALICE, mid, html_body="<p>{{ name }}</p>").html_body == "<p>{{ name }}</p>"
    assert revisions.save_revision(store, ALICE, mid, html_body="").html_body is None
    assert [r.number for r in revisions.all_revisions(store, mid)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text_body": "Dear {{ name }},\n{% if %}\n"}, r"body line 2: syntax error"),
        ({"text_body": "Hi\n\n{{ nmae }}\n"}, r"body line 3: unknown merge field 'nmae' \(known: email, name\)"),
        ({"subject": "Hi {{ first_name }}"}, r"subject line 1: unknown merge field 'first_name'"),
        ({"html_body": "<p>\n{{ name|shout }}</p>"}, r"html line 2: No filter named 'shout'"),
        ({"text_body": "{% include 'footer.txt' %}"}, r"body line 1: templates cannot include"),
        ({"subject": "Hi\r\nBcc: everyone@example.net"}, r"subject contains a line break"),
        ({"subject": "Hi\nthere"}, r"subject contains a line break"),
        ({"subject": "Hi\u2028there"}, r"subject contains a line break"),
        ({"subject": "   "}, r"subject is empty"),
    ],
)
def test_invalid_template_is_refused_and_nothing_saved(store, make_mailing, changes, message):
    mid = make_mailing(1)
    with pytest.raises(InvalidInput, match=message) as info:
        revisions.save_revision(store, ALICE, mid, **changes)
    assert "\n" not in str(info.value)  # one line for the operator
    assert len(revisions.all_revisions(store, mid)) == 1
    assert [e.action for e in audit.entries(store, limit=10)] == ["create"]


def test_every_problem_is_counted(store, make_mailing):
    mid = make_mailing(1)
    with pytest.raises(InvalidInput, match=r"unknown merge field 'a'.*\(and 1 more\)"):
        revisions.save_revision(store, ALICE, mid, text_body="{{ a }} {{ b }}")


def test_deleted_mailing_template_cannot_be_saved(store, make_mailing):
    mid = make_mailing(1)
    mailings.delete_mailing(store, ALICE, mid)
    with pytest.raises(NotFound):
        revisions.save_revision(store, ALICE, mid, subject="x")


def test_recipients_cannot_be_edited():
    """The store offers no way to change a mailing's recipients: delete it and create it again."""
    public = {name for module in (mailings, revisions, importer, queue) for name in dir(module) if not name.startswith("_")}
    editing = {n for n in public if any(w in n for w in ("add_recipient", "edit_recipient", "update_recipient", "set_recipient"))}
    assert editing == set()


def test_subject_may_not_start_using_a_multi_line_merge_field(store, csv_file):
    """The import checked only the fields the first subject used: a save checks the newly used ones."""
    rows = [{"email": f"u{i}@example.net", "name": f"U{i}", "address": "Main St 1"} for i in range(4)]
    rows[2]["address"] = "Main St 1\nApt 4"
    rows[3]["address"] = "Main St 1\u2028Apt 5"
    mid = create_mailing(store, ALICE, name="n", sender="news@shop.example", subject="Hi {{ name }}",
                         text_body="{{ address }}", html_body=None, recipients=csv_file(rows)).mailing_id

    with pytest.raises(InvalidInput, match=r"merge field 'address', which has a line break for 2 recipient\(s\) \(first: u2@example.net\)"):
        revisions.save_revision(store, ALICE, mid, subject="To {{ address }}")
    assert len(revisions.all_revisions(store, mid)) == 1
    # Fields already in the subject, or kept to the body, are fine.
    assert revisions.save_revision(store, ALICE, mid, subject="Hello {{ name }}").number == 2
    # Once those two have been sent, only the recipients still waiting count.
    claimed = queue.claim(store, "e1", 10, 60)
    queue.record(store, "e1", sent(store, [c for c in claimed if c.email in ("u2@example.net", "u3@example.net")]))
    assert revisions.save_revision(store, ALICE, mid, subject="To {{ address }}").number == 3
